"""Shared fixtures: a throwaway redis-server, a moto server and the fake Slack Web API,
started once per test session; per test, a fresh key prefix, a reset moto and a reset Slack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.peers import AWS_ENV, MotoServer, RedisServer, moto_server, redis_server

for _key, _value in AWS_ENV.items():
    os.environ.setdefault(_key, _value)

BOT_TOKEN = "xoxb-test"
SIGNING_SECRET = "test-signing-secret"


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_srv() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def moto(moto_srv: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    moto_srv.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_srv.url)
    return moto_srv


@pytest.fixture
def pending_images(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """New images start `pending` (moto makes them available at once); flip with `make_available`."""
    from moto.ec2.models.amis import Ami

    original = Ami.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if kwargs.get("instance") is not None or kwargs.get("source_ami") is not None:
            self.state = "pending"

    monkeypatch.setattr(Ami, "__init__", init)
    return moto


def set_image_state(moto: MotoServer, region: str, image_id: str, state: str) -> None:
    moto.backend(region).amis[image_id].state = state


@pytest.fixture(scope="session")
def slack_srv() -> Iterator[Any]:
    from bot.fakeslack import FakeSlack

    with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def slack(slack_srv: Any) -> Any:
    slack_srv.reset()
    return slack_srv


@pytest.fixture
def prefix() -> str:
    return f"amibot-test:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def settings_for(redis_srv: RedisServer, slack: Any, prefix: str) -> Callable[..., Any]:
    """Settings for an in-process bot against the session's peers; keyword overrides win."""
    from bot.config import load_settings

    def make(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": slack.api_url,
            "redis_url": redis_srv.url,
            "amibot_key_prefix": prefix,
            "amibot_regions": "us-east-1,eu-west-1,ap-southeast-2",
            "amibot_poll_interval": 0.1,
            "amibot_lease": "2s",
            "amibot_notfound_grace": "3s",
        }
        values.update(overrides)
        return load_settings(values, env_file=None)

    return make


@pytest.fixture
def bot(settings_for: Callable[..., Any], moto: MotoServer) -> Iterator[Callable[..., Any]]:
    """Build (and start) in-process bots; all are stopped after the test."""
    from bot.app import build

    built: list[Any] = []

    def make(start: bool = True, **overrides: Any) -> Any:
        runtime = build(settings_for(**overrides))
        built.append(runtime)
        if start:
            runtime.start_background()
        return runtime

    yield make
    for runtime in built:
        runtime.stop()


@pytest.fixture
def instance(moto: MotoServer) -> str:
    """A running instance named "web" in us-east-1."""
    ec2 = moto.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}],
    )
    return str(reservation["Instances"][0]["InstanceId"])
