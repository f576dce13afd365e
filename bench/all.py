"""Run every benchmark, one process each, and say which met its goals.

    python -m bench.all [--only ack_latency,memory]

Each benchmark writes its own section of docs/benchmarks.md. Exit status: 0 when every goal was
met, 3 when a goal was missed, 1 when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench._common import MISSED, PY, ROOT, SECTIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.all")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})")
    outcome = {}
    for name in names:
        print(f"\n===== bench.{name} =====", flush=True)
        started = time.monotonic()
        code = subprocess.run([PY, "-m", f"bench.{name}"], cwd=ROOT, check=False).returncode
        state = {0: "goals met", MISSED: "goal missed"}.get(code, f"failed (exit {code})")
        outcome[name] = (code, state, time.monotonic() - started)
    print("\n===== summary =====")
    for name, (_, state, seconds) in outcome.items():
        print(f"{name:15} {state:20} {seconds:6.0f} s")
    codes = {code for code, _, _ in outcome.values()}
    if codes - {0, MISSED}:
        return 1
    return MISSED if MISSED in codes else 0


if __name__ == "__main__":
    sys.exit(main())
