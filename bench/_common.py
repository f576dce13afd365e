"""What the benchmarks share: peers, the bot process, moto hooks, a delaying proxy, statistics and
the report file (docs/benchmarks.md, one section per benchmark, replaced in place on a rerun).

The peers are the ones the tests use (`tests.peers`): a throwaway redis-server and an in-process
moto server, plus the fake Slack Web API (`bot.fakeslack`). The bot runs as a real
`amibot run --http` process; only processes started here are stopped here, by PID.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from slack_sdk.signature import SignatureVerifier

from tests.peers import MotoServer, RedisServer, free_port, moto_server, redis_server

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
PY = sys.executable
HOST = "127.0.0.1"

MISSED = 3  # exit status of a benchmark that ran and missed a goal (0: every goal met)
SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-test"
# moto reads the signing access key only if it looks like one (20 capitals or digits)
BOT_ACCESS_KEY = "AKIAAMIBOTBENCH00000"
# Names of the environment the bot reads; none leaks in from the benchmark's own environment.
_OWN_ENV = re.compile(r"^(SLACK_|AMIBOT_|AWS_|REDIS_URL$|MOTO_)")


# --- statistics and output -----------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def prose(text: str) -> str:
    """Markdown from an indented block of text: lines are joined into paragraphs, a line that starts
    with "- " starts a list item, and a blank line ends a paragraph."""
    out: list[str] = []
    for raw in textwrap.dedent(text).strip().splitlines():
        line = raw.strip()
        if not line:
            out.append("")
        elif line.startswith("- ") or not out or not out[-1]:
            out.append(line)
        else:
            out[-1] += " " + line
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**MISS**"


def versions() -> dict[str, str]:
    found = {}
    for name in ("slack-bolt", "slack-sdk", "boto3", "botocore", "moto", "redis", "waitress"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    binary = shutil.which("redis-server")
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"v=(\S+)", out)
        found["redis-server"] = match.group(1) if match else out.strip()
    return found


def machine_lines() -> list[str]:
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=False).stdout.strip()
    packages = ", ".join(f"{k} {v}" for k, v in versions().items())
    return [
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"- Machine: `{uname}`; {os.cpu_count()} CPUs; Python {platform.python_version()}",
        f"- Packages: {packages}",
    ]


_HEADER = """# Benchmarks

Figures from this repository's `bench/` scripts, each run on the machine named in its section.
Rerun one with `python -m bench.<name>` or all with `python -m bench.all` (from the repository
root, with the test dependencies installed and `redis-server` on the PATH); each run replaces its
own section below. Timings are compared side by side within one run (medians of several rounds),
never asserted in tests. The goals are those of SPEC.md ("Performance goals").
"""

SECTIONS = ("ack_latency", "tracking_calls", "prune_scale", "memory")


def write_section(name: str, markdown: str) -> None:
    """Put `markdown` between this benchmark's markers in docs/benchmarks.md (in place)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else _HEADER
    for other in SECTIONS:  # every section has its place, in a fixed order
        if f"<!-- bench:{other} -->" not in text:
            text = text.rstrip("\n") + f"\n\n<!-- bench:{other} -->\n_not run yet_\n<!-- /bench:{other} -->\n"
    if start not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(f"{head}{start}\n{markdown.strip()}\n{end}{tail}", encoding="utf-8")
    print(f"\nwrote the {name} section of {REPORT.relative_to(ROOT)}")


def section(title: str, command: str, goal_lines: Sequence[str], body: str) -> str:
    goals = "\n".join(f"- {line}" for line in goal_lines)
    return "\n".join(
        [
            f"## {title}",
            "",
            *machine_lines(),
            f"- Rerun: `{command}`",
            "",
            "**Goals**",
            "",
            goals,
            "",
            body.strip(),
        ]
    )


def quiet() -> None:
    """The in-process moto server logs every request; the fake Slack its faults."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("werkzeug", "moto", "botocore", "urllib3", "bot.fakeslack"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --- peers ---------------------------------------------------------------------------------------


@dataclass
class Peers:
    redis: RedisServer
    moto: MotoServer
    slack: Any  # bot.fakeslack.FakeSlack
    workdir: Path


@contextlib.contextmanager
def peers() -> Iterator[Peers]:
    """A throwaway redis-server, the in-process moto server and the fake Slack, for one benchmark."""
    from bot.fakeslack import FakeSlack

    quiet()
    workdir = Path(tempfile.mkdtemp(prefix="amibot-bench-"))
    try:
        with redis_server() as redis_srv, moto_server() as moto_srv, FakeSlack(token=BOT_TOKEN) as slack:
            yield Peers(redis_srv, moto_srv, slack, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def signed_headers(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body.decode())
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
    }


# --- moto hooks (the moto server runs in this process) ---------------------------------------------


@contextlib.contextmanager
def fast_image_id_filter() -> Iterator[None]:
    """moto answers DescribeImages with an `image-id` filter by matching every image against every
    value with fnmatch (O(images x ids)); with thousands of images that makes moto, not the bot, the
    bottleneck. This answers the same request by dictionary lookup: same images, same call count."""
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.utils import generic_filter

    original = AmiBackend.describe_images

    def describe_images(
        self: Any,
        ami_ids: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        exec_users: list[str] | None = None,
        owners: list[str] | None = None,
    ) -> Any:
        wanted = (filters or {}).get("image-id")
        if ami_ids or exec_users or not wanted or any(c in v for v in wanted for c in "*?["):
            return original(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)
        images = [self.amis[i] for i in dict.fromkeys(wanted) if i in self.amis]
        if owners:
            owners = [self.account_id if o == "self" else o for o in owners]
            images = [a for a in images if a.owner_id in owners or a.owner_alias in owners]
        rest = {k: v for k, v in (filters or {}).items() if k != "image-id"}
        return generic_filter(rest, images) if rest else images

    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]
    try:
        yield
    finally:
        AmiBackend.describe_images = original  # type: ignore[method-assign]


@dataclass(frozen=True)
class DescribeImagesCall:
    at: float  # time.monotonic()
    access_key: str  # who signed it: each party gets its own AWS_ACCESS_KEY_ID
    region: str
    ids: int  # image ids asked for (ImageIds= or the image-id filter)
    returned: int


@dataclass
class DescribeImagesLog:
    calls: list[DescribeImagesCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by(
        self, access_key: str, since: float = 0.0, until: float = float("inf")
    ) -> list[DescribeImagesCall]:
        with self.lock:
            return [c for c in self.calls if c.access_key == access_key and since <= c.at <= until and c.ids]


@contextlib.contextmanager
def count_describe_images() -> Iterator[DescribeImagesLog]:
    """Every DescribeImages request the moto server answers, with the access key that signed it."""
    from moto.ec2.responses.amis import AmisResponse

    log = DescribeImagesLog()
    original = AmisResponse.describe_images

    def describe_images(self: Any) -> Any:
        filters = self._filters_from_querystring() or {}
        ids = len(self._get_param("ImageIds", []) or ()) + len(filters.get("image-id", ()))
        result = original(self)
        returned = len(getattr(result, "result", {}).get("Images", []) or [])
        with log.lock:
            call = DescribeImagesCall(time.monotonic(), self.get_access_key(), self.region, ids, returned)
            log.calls.append(call)
        return result

    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]
    try:
        yield log
    finally:
        AmisResponse.describe_images = original  # type: ignore[method-assign]


def pending_images(moto: MotoServer, region: str, count: int, prefix: str) -> list[str]:
    """`count` images in moto's backend (not through the API: seconds instead of minutes), pending."""
    backend = moto.backend(region)
    ids = []
    for n in range(count):
        ami = backend.register_image(name=f"{prefix}-{n:05d}", description="bench")
        ami.state = "pending"
        ids.append(ami.id)
    return ids


# --- a proxy that delays every AWS call ----------------------------------------------------------


class DelayProxy:
    """HTTP proxy in front of the moto server: sleeps `delay` seconds, then forwards the request.
    The bot's AWS_ENDPOINT_URL points here, so every AWS call takes at least `delay`."""

    _HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"})

    def __init__(self, target_port: int, delay: float) -> None:
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self._forward()

            def do_GET(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    proxy.requests += 1
                time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy._HOP}
                conn = http.client.HTTPConnection(HOST, target_port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in proxy._HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="delay-proxy")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the bot process -----------------------------------------------------------------------------


def bot_env(
    p: Peers, prefix: str, *, aws_endpoint_url: str | None = None, **overrides: str
) -> dict[str, str]:
    """The bot's environment: these peers, the production defaults unless overridden."""
    env = {k: v for k, v in os.environ.items() if not _OWN_ENV.match(k)}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": p.slack.api_url,
            "REDIS_URL": p.redis.url,
            "AMIBOT_KEY_PREFIX": prefix,
            "AWS_ENDPOINT_URL": aws_endpoint_url or p.moto.url,
            "AWS_ACCESS_KEY_ID": BOT_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AMIBOT_REGIONS": "us-east-1,eu-west-1,ap-southeast-2",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Process:
    """A server subprocess (the bot, or the floor app), stopped by PID only."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0, health: str = "/healthz") -> Process:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if get(self.port, health, timeout=2)[0] == 200:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {health} within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def metrics(self) -> dict[str, float]:
        status, body = get(self.port, "/metrics")
        assert status == 200, body[:200]
        values: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, name: str) -> float:
        return sum(v for k, v in self.metrics().items() if k == name or k.startswith(name + "{"))

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) from /proc/<pid>/status, in KiB, summed over the bot's
        processes (`amibot run` and its background child, `amibot work`)."""
        total = {"VmRSS": 0, "VmHWM": 0}
        for pid in process_tree(self.pid):
            for key, value in proc_memory(pid).items():
                total[key] += value
        return total

    def cpu_seconds_all(self) -> float:
        """CPU time of the bot's processes (the ack process and its background child)."""
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))


def process_tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc/<pid>/task/*/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in children.read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def bot_process(p: Peers, name: str, env: Mapping[str, str], *, threads: int = 8) -> Process:
    """`amibot run --http` (the installed package, run from an empty directory: no stray .env)."""
    port = free_port()
    argv = [PY, "-m", "bot", "run", "--http", "--host", HOST, "--port", str(port), "--threads", str(threads)]
    return Process(name, argv, dict(env), p.workdir, port, p.workdir / f"{name}.log")


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def wait_polls(bot: Process, more: int, timeout: float = 120.0) -> float:
    """Wait until the bot's tracker has polled `more` more times; returns the new count."""
    start = bot.metric("amibot_tracker_polls_total")
    wait_until(
        lambda: bot.metric("amibot_tracker_polls_total") >= start + more,
        timeout,
        f"{more} tracker polls",
        interval=0.05,
    )
    return bot.metric("amibot_tracker_polls_total")


def jobs_store(redis_url: str, prefix: str) -> Any:
    """The bot's own JobStore, on these keys (to register jobs exactly as the bot stores them)."""
    from bot import store
    from bot.keys import Keys
    from bot.store.effects import EffectWriter
    from bot.store.jobs import JobStore

    client = store.connect(redis_url)
    keys = Keys(prefix)
    return JobStore(client, keys, EffectWriter(client, keys))


def tracking_job(image_id: str, region: str, now: float, *, channel: str = "CGENERAL", n: int = 0) -> Any:
    """A create job as `Creating` leaves it once CreateImage answered: TRACKING, its image PENDING."""
    from bot.ids import new_job_id
    from bot.models import Job, JobKind, JobState, Target, TargetState

    target = Target(region=region, state=TargetState.PENDING, image_id=image_id, started_at=now)
    return Job(
        id=new_job_id(),
        kind=JobKind.CREATE,
        requester="UASKER",
        channel=channel,
        team="T0001",
        region=region,
        created_at=now,
        state=JobState.TRACKING,
        response_url="",
        params={
            "instance_id": f"i-{n:017x}",
            "name": f"bench-{n:05d}",
            "description": None,
            "reboot": False,
            "tags": [],
        },
        targets=(target,),
        deadline=now + 12 * 3600,
        updated_at=now,
    )


def register_tracking(
    jobs: Any, images: Sequence[tuple[str, str]], now: float, *, audit: bool = False, threads: int = 8
) -> list[str]:
    """Store one tracking job per (region, image id) through the bot's JobStore; with `audit`, also
    the two audit entries a real `/ami create` leaves (create.requested, create.started)."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.store.effects import AuditEntry, Effects
    from bot.store.jobs import JobExists

    def one(n: int) -> str:
        region, image_id = images[n]
        while True:
            job = tracking_job(image_id, region, now, n=n)
            effects = Effects()
            if audit:
                effects = Effects(
                    audit=[
                        AuditEntry("UASKER", "create.requested", job.id, detail="bench", region=region),
                        AuditEntry(
                            "UASKER", "create.started", image_id, detail=f"job {job.id}", region=region
                        ),
                    ]
                )
            try:
                jobs.create(job, effects)
                return str(job.id)
            except JobExists:  # 6 hex digits: a few collisions in 10,000
                continue

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(len(images))))
