"""Fixtures for the end-to-end tests: real `amibot run --http` processes against the session's
peers (throwaway redis-server, in-process moto server, fake Slack), one key prefix per test.

`start_bot(**env)` starts a bot (stopped after the test, by PID); when a test fails, every bot's
log (its stderr and stdout) is attached to the report.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIGNING_SECRET
from tests.e2e.harness import BotProcess, DescribeImagesCall, DescribeImagesLog, Gate, SlackSigner, bot_env
from tests.peers import MotoServer, RedisServer

BotFactory = Callable[..., BotProcess]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for bot in getattr(item, "_amibot_bots", []):
            report.sections.append((f"amibot log: {bot.name} ({bot.log_path})", bot.log_tail(200)))
    return report


@pytest.fixture(scope="session", autouse=True)
def _quiet_moto_requests() -> None:
    """The moto server (in this process) logs every request; keep failure reports readable."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def signer() -> SlackSigner:
    return SlackSigner(SIGNING_SECRET)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="amibot-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def env_for(
    redis_srv: RedisServer, slack: Any, moto: MotoServer, prefix: str
) -> Callable[..., dict[str, str]]:
    """The environment of a bot against this test's peers; keyword overrides win."""

    def make(**overrides: str) -> dict[str, str]:
        return bot_env(
            secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            redis_url=redis_srv.url,
            prefix=prefix,
            aws_endpoint_url=moto.url,
            **overrides,
        )

    return make


@pytest.fixture(scope="module")
def _module_bot(
    redis_srv: RedisServer, slack_srv: Any, moto_srv: MotoServer, signer: SlackSigner
) -> Iterator[BotProcess]:
    path = Path(tempfile.mkdtemp(prefix="amibot-e2e-"))
    env = bot_env(
        secret=SIGNING_SECRET,
        slack_api_url=slack_srv.api_url,
        redis_url=redis_srv.url,
        prefix=f"amibot-e2e-idle:{uuid.uuid4().hex[:8]}:",
        aws_endpoint_url=moto_srv.url,
    )
    bot = BotProcess(name="idle-bot", env=env, workdir=path, signer=signer)
    try:
        yield bot.start()
    finally:
        bot.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def idle_bot(request: pytest.FixtureRequest, _module_bot: BotProcess) -> BotProcess:
    """One bot shared by the tests of a module that only look at HTTP answers (they change nothing)."""
    request.node._amibot_bots = [_module_bot]  # type: ignore[attr-defined]
    if not _module_bot.running:
        _module_bot.start()
    return _module_bot


@pytest.fixture
def start_bot(
    request: pytest.FixtureRequest, env_for: Callable[..., dict[str, str]], workdir: Path, signer: SlackSigner
) -> Iterator[BotFactory]:
    """Start real bot processes; every one is stopped (SIGTERM, then SIGKILL) after the test."""
    bots: list[BotProcess] = []
    request.node._amibot_bots = bots  # type: ignore[attr-defined]

    def make(name: str | None = None, *, start: bool = True, **env: str) -> BotProcess:
        bot = BotProcess(
            name=name or f"bot{len(bots) + 1}", env=env_for(**env), workdir=workdir, signer=signer
        )
        bots.append(bot)
        return bot.start() if start else bot

    yield make
    for bot in bots:  # SIGTERM to all first, then wait for each: they shut down in parallel
        bot.terminate()
    for bot in bots:
        bot.stop()


@pytest.fixture
def moto_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Gate]]:
    """`moto_gate(cls, name, after=False)`: hold calls to moto's `cls.name` (the server runs here)."""
    gates: list[Gate] = []

    def hold(cls: type, name: str, *, after: bool = False, times: int = 1) -> Gate:
        gate = Gate(times)
        monkeypatch.setattr(cls, name, gate.wrap(getattr(cls, name), after=after))
        gates.append(gate)
        return gate

    yield hold
    for gate in gates:
        gate.release()


@pytest.fixture
def describe_images_log(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> DescribeImagesLog:
    """Every DescribeImages request moto answers, with the access key that signed it."""
    from moto.ec2.responses.amis import AmisResponse

    record = DescribeImagesLog()
    original = AmisResponse.describe_images

    def describe_images(self: Any) -> Any:
        filters = self._filters_from_querystring() or {}
        ids = tuple(self._get_param("ImageIds", []) or ()) + tuple(filters.get("image-id", ()))
        call = DescribeImagesCall(time.monotonic(), self.get_access_key(), ids, tuple(sorted(filters)))
        record.calls.append(call)
        return original(self)

    monkeypatch.setattr(AmisResponse, "describe_images", describe_images)
    return record
