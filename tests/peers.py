"""Real peers for the tests: a throwaway redis-server and a moto server, each on a free port.

Used by tests/conftest.py and by the benchmarks. Only processes started here are stopped
here (by PID), and only Redis servers started here are ever flushed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

REDIS_MISSING = (
    "redis-server is not installed: the tests need a real Redis. "
    "Install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) "
    "or point REDIS_URL at a Redis the tests may use (keys are namespaced, nothing is flushed)."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None
    workdir: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def start(self) -> None:
        """(Re)start on the same port (to test a Redis outage and the bot reconnecting)."""
        if self.process is not None:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(REDIS_MISSING)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.workdir,
                "--logfile",
                os.path.join(self.workdir, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._ping, timeout=10, what=f"redis-server on port {self.port}")

    def _ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    workdir = tempfile.mkdtemp(prefix="amibot-redis-")
    server = RedisServer(port=free_port(), process=None, workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@dataclass
class MotoServer:
    port: int
    server: Any

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        )

    def backend(self, region: str, account: str = "123456789012") -> Any:
        """moto's in-process EC2 backend (the server runs in this process)."""
        from moto.ec2.models import ec2_backends

        return ec2_backends[account][region]

    def client(self, service: str, region: str = "us-east-1") -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    for key, value in AWS_ENV.items():
        os.environ.setdefault(key, value)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(port=port, server=server)
    finally:
        server.stop()
