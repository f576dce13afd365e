"""Drive the real `amibot run --http` process: start/stop/kill it, and talk to it as Slack does.

`BotProcess` runs `python -m bot run --http` in a temporary directory (no stray `.env`) with an
environment that points at the test session's peers, and stops it by PID only. `SlackSigner`
signs request bodies exactly as Slack does; `slash_command_body` and `block_actions_body` build
the form bodies Slack sends.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from tests.peers import free_port

HOST = "127.0.0.1"
EVENTS = "/slack/events"
JOB_ID = re.compile(r"j-[0-9a-f]{6}")

# Names of the environment that the bot reads; none leaks in from the test process.
_OWN_ENV = re.compile(r"^(SLACK_|AMIBOT_|AWS_|REDIS_URL$|MOTO_)")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.text[:300]!r})"


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One HTTP request on its own connection; 4xx/5xx are returned, not raised."""
    assert url.startswith("http://"), url
    hostport, _, path = url[len("http://") :].partition("/")
    host, _, port = hostport.partition(":")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return Response(
            resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, time.monotonic() - started
        )
    finally:
        conn.close()


# --- what Slack sends ---------------------------------------------------------------------------


class SlackSigner:
    """Signs bodies as Slack does: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.verifier = SignatureVerifier(secret)

    def signature(self, body: bytes, timestamp: str) -> str:
        try:
            signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        except UnicodeDecodeError:  # slack_sdk signs text; Slack (and this) sign the bytes
            digest = hmac.new(self.secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
            signature = f"v0={digest.hexdigest()}"
        assert signature is not None
        return signature

    def headers(
        self, body: bytes, timestamp: int | None = None, content_type: str | None = None
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": content_type or "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signature(body, ts),
        }


@dataclass(frozen=True)
class Asker:
    """Who sends a command, from where."""

    user: str = "UASKER"
    user_name: str = "asker"
    channel: str = "CGENERAL"
    channel_name: str = "general"
    team: str = "T0001"
    team_domain: str = "example"


ASKER = Asker()


def slash_command_body(text: str, response_url: str, asker: Asker = ASKER, **extra: str) -> bytes:
    """The form body of a `/ami` slash command, field for field as Slack sends it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": asker.team,
        "team_domain": asker.team_domain,
        "channel_id": asker.channel,
        "channel_name": asker.channel_name,
        "user_id": asker.user,
        "user_name": asker.user_name,
        "command": "/ami",
        "text": text,
        "api_app_id": "A0FAKESLACK",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex}",
    }
    fields.update(extra)
    return urlencode(fields).encode()


def block_actions_body(
    action_id: str,
    value: str,
    response_url: str,
    *,
    asker: Asker = ASKER,
    message_ts: str = "1700000000.000100",
    block_id: str = "actions",
) -> bytes:
    """The form body of a `block_actions` interaction (a button click): `payload=<json>`."""
    payload = {
        "type": "block_actions",
        "user": {
            "id": asker.user,
            "username": asker.user_name,
            "name": asker.user_name,
            "team_id": asker.team,
        },
        "api_app_id": "A0FAKESLACK",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": asker.channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex}",
        "team": {"id": asker.team, "domain": asker.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": asker.channel, "name": asker.channel_name},
        "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "text": {"type": "plain_text", "text": "Button"},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


# --- the bot process ---------------------------------------------------------------------------


@dataclass
class BotProcess:
    """One `amibot run --http` process. Started with `start()`; stopped by PID only."""

    name: str
    env: dict[str, str]
    workdir: Path
    signer: SlackSigner
    port: int = field(default_factory=free_port)
    http: bool = True  # False: `amibot run` in Socket Mode (set SLACK_APP_TOKEN; no /healthz then)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _terminating: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0) -> BotProcess:
        self.launch()
        self.wait_healthy(timeout)
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to answer (see `wait_healthy`)."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        self._terminating = False
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts} of {self.name} on port {self.port} =====\n".encode())
        log.flush()
        cmd = [sys.executable, "-m", "bot", "run"]
        if self.http:
            cmd += ["--http", "--port", str(self.port), "--host", HOST]
        try:
            self.process = subprocess.Popen(
                cmd, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        finally:
            log.close()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                resp = request("GET", self.url + "/healthz", timeout=2)
                if resp.status == 200:
                    return
                last = repr(resp)
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: /healthz not 200 within {timeout}s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            if not self._terminating:
                process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        return process.wait(timeout=timeout)

    def terminate(self) -> None:
        """Send SIGTERM and return at once (`stop()` waits)."""
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self.process.send_signal(signal.SIGTERM)
            self._terminating = True

    def kill(self) -> None:
        """kill -9: no shutdown hooks, leases left to expire."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self, timeout: float = 30.0) -> BotProcess:
        self.stop()
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- HTTP

    def get(self, path: str, timeout: float = 10.0) -> Response:
        return request("GET", self.url + path, timeout=timeout)

    def post(self, body: bytes, headers: Mapping[str, str], timeout: float = 10.0) -> Response:
        return request("POST", self.url + EVENTS, body, headers, timeout=timeout)

    def post_signed(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        content_type: str | None = None,
        timeout: float = 10.0,
    ) -> Response:
        return self.post(body, self.signer.headers(body, timestamp, content_type), timeout=timeout)

    def command(self, text: str, response_url: str, asker: Asker = ASKER, **extra: str) -> Response:
        """A signed `/ami` slash command."""
        return self.post_signed(slash_command_body(text, response_url, asker, **extra))

    def metrics(self) -> dict[str, float]:
        resp = self.get("/metrics")
        assert resp.status == 200, resp
        return parse_metrics(resp.text)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (labels as printed)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def metric(values: Mapping[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in values.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def bot_env(
    *,
    secret: str,
    slack_api_url: str,
    redis_url: str,
    prefix: str,
    aws_endpoint_url: str,
    **overrides: str,
) -> dict[str, str]:
    """The bot's environment: the peers of this test session, fast timings, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not _OWN_ENV.match(k)}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": slack_api_url,
            "REDIS_URL": redis_url,
            "AMIBOT_KEY_PREFIX": prefix,
            "AWS_ENDPOINT_URL": aws_endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AMIBOT_REGIONS": "us-east-1,eu-west-1",
            "AMIBOT_POLL_INTERVAL": "0.2",
            "AMIBOT_LEASE": "1s",
            "AMIBOT_NOTFOUND_GRACE": "5s",
            "AMIBOT_LOG_LEVEL": "INFO",
        }
    )
    env.update(overrides)
    return env


# --- reading the outcome -------------------------------------------------------------------------


def ack_text(resp: Response) -> str:
    """The text of an ephemeral slash command ack (asserting that it is one)."""
    assert resp.status == 200, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("response_type") == "ephemeral", body
    assert isinstance(body.get("text"), str) and body["text"].strip(), body
    return str(body["text"])


def job_id_of(resp: Response) -> str:
    text = ack_text(resp)
    match = JOB_ID.search(text)
    assert match, f"no job id in the ack: {text!r}"
    return match.group(0)


def images_of_job(moto: Any, job_id: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    """Images in moto tagged `amibot:job=<job_id>` (through the EC2 API, as a person would look)."""
    ec2 = moto.client("ec2", region)
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:amibot:job", "Values": [job_id]}])
    return list(found["Images"])


def own_images(moto: Any, region: str = "us-east-1") -> list[dict[str, Any]]:
    return list(moto.client("ec2", region).describe_images(Owners=["self"])["Images"])


def tags_of(image: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def notices_for(slack: Any, image_id: str, channel: str | None = None) -> list[Any]:
    """Successful chat.postMessage calls that name `image_id` (to `channel`, if given)."""
    return [p for p in slack.posts(channel) if image_id in str(p.params.get("text", ""))]


# --- holding and watching moto (the server runs in the test process) ----------------------------


class Gate:
    """Holds the first `times` calls of a patched moto function until `release()` (at most
    `limit` seconds), before the call runs or, with `after`, once it has run but before it answers."""

    def __init__(self, times: int = 1, limit: float = 30.0) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self._left = times
        self._limit = limit
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., Any], *, after: bool) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                hold, self._left = self._left > 0, self._left - 1
            if hold and not after:
                self._hold()
            result = fn(*args, **kwargs)
            if hold and after:
                self._hold()
            return result

        return held

    def _hold(self) -> None:
        self.entered.set()
        self.released.wait(self._limit)

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class DescribeImagesCall:
    at: float  # time.monotonic()
    access_key: str  # who signed the request (each replica gets its own AWS_ACCESS_KEY_ID)
    image_ids: tuple[str, ...]  # asked for by id (ImageIds= or the image-id filter): a tracker poll
    filters: tuple[str, ...]  # the names of the filters


@dataclass
class DescribeImagesLog:
    calls: list[DescribeImagesCall] = field(default_factory=list)

    def polls(self, access_key: str | None = None, since: float = 0.0) -> list[DescribeImagesCall]:
        """Calls by image id (what the tracker makes), by `access_key` if given, from `since` on."""
        return [
            c
            for c in list(self.calls)
            if c.image_ids and c.at >= since and (access_key is None or c.access_key == access_key)
        ]

    def pollers(self, since: float, until: float | None = None) -> set[str]:
        """Access keys that polled images by id in [since, until]."""
        end = time.monotonic() if until is None else until
        return {c.access_key for c in self.polls(since=since) if c.at <= end}
