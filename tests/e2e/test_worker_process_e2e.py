"""`amibot run` keeps its background work in a child process (`amibot work`): it is restarted
when it dies, it dies with its parent, and `/metrics` counts the work it does."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BotProcess, job_id_of, metric
from tests.peers import wait_until

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in listing.read_text().split()]
    return found


def worker_of(bot: BotProcess) -> int:
    return int(wait_until(lambda: children(bot.pid) and children(bot.pid)[0], what="the background worker"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_killed_worker_is_restarted_and_the_work_goes_on(
    start_bot: Callable[..., BotProcess], slack: Any, moto: Any, instance: str
) -> None:
    bot = start_bot()
    first = worker_of(bot)
    assert "bot" in Path(f"/proc/{first}/cmdline").read_text() and "work" in Path(
        f"/proc/{first}/cmdline"
    ).read_text().split("\0")

    os.kill(first, signal.SIGKILL)
    second = int(
        wait_until(lambda: [c for c in children(bot.pid) if c != first], timeout=15, what="a new worker")[0]
    )
    assert second != first and alive(second)
    assert "restarting" in bot.log_text()

    job_id = job_id_of(bot.command(f"create {instance} --name 'after restart'", slack.new_response_url()))
    notice = slack.wait_for(lambda s: s.posts("CGENERAL"), timeout=20, what="the notice")
    assert job_id in notice[0].params["text"]
    # the work was done in the child, and /metrics (served by the parent) counts it
    assert metric(bot.metrics(), "amibot_tracker_polls_total") > 0
    assert metric(bot.metrics(), "amibot_aws_calls_total", operation="CreateImage", outcome="ok") == 1


def test_the_worker_dies_with_its_parent(start_bot: Callable[..., BotProcess]) -> None:
    bot = start_bot()
    worker = worker_of(bot)
    bot.kill()  # kill -9: the parent cannot stop its child itself
    wait_until(lambda: not alive(worker), timeout=10, what="the orphaned worker to die")


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.parametrize(("setting", "lower_by"), [(None, 10), ("3", 3), ("0", 0)])
def test_the_worker_yields_the_cpu_to_the_acks(
    start_bot: Callable[..., BotProcess], setting: str | None, lower_by: int
) -> None:
    bot = start_bot(**({"AMIBOT_WORKER_NICE": setting} if setting is not None else {}))
    worker = worker_of(bot)
    expected = min(19, niceness(bot.pid) + lower_by)
    wait_until(lambda: niceness(worker) == expected, what=f"the worker at niceness {expected}")
