"""AWS for the demo: moto in this process, with AWS's timing of new images emulated.

moto makes a created or copied image `available` at once; real AWS takes minutes. Here a new
image starts `pending` and becomes `available` after `available_after` seconds, so the bot's
tracking, polling and notices run as they do against AWS. This lives only in the demo: the
bot's own code is the production code, unchanged.

The process environment is isolated for the demo's lifetime: fake credentials, no endpoint
override, no profile or config file of the user's, no AMIBOT_*/SLACK_*/REDIS_URL settings
(the demo's settings are all explicit); everything is restored on stop.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from unittest import mock

ACCOUNT_ID = "123456789012"  # moto's default account

_DROP_PREFIXES = ("AMIBOT_", "SLACK_", "AWS_")
_DROP = ("REDIS_URL",)
_DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


class IsolatedEnv:
    """The process environment the demo runs in; restored by `stop()`."""

    def __init__(self) -> None:
        self._patch = mock.patch.dict(os.environ)

    def start(self) -> None:
        self._patch.start()
        for name in list(os.environ):
            if name.startswith(_DROP_PREFIXES) or name in _DROP:
                del os.environ[name]
        os.environ.update(_DEMO_ENV)

    def stop(self) -> None:
        self._patch.stop()


class EmulatedAws:
    """moto's `mock_aws` for the whole demo, with new images `pending` for a while."""

    def __init__(self, available_after: float = 4.0) -> None:
        self.available_after = available_after
        self._mock: Any = None
        self._original_init: Any = None
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        from moto import mock_aws

        self._mock = mock_aws()
        self._mock.start()
        self._patch_new_images()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        if self._original_init is not None:
            from moto.ec2.models.amis import Ami

            setattr(Ami, "__init__", self._original_init)  # noqa: B010 (restoring moto's)
            self._original_init = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def backend(self, region: str) -> Any:
        """moto's EC2 backend of `region` (for seeding what the API cannot set)."""
        from moto.ec2.models import ec2_backends

        return ec2_backends[ACCOUNT_ID][region]

    def _patch_new_images(self) -> None:
        from moto.ec2.models.amis import Ami

        original = Ami.__init__
        emulation = self

        def init(ami: Any, *args: Any, **kwargs: Any) -> None:
            original(ami, *args, **kwargs)
            if kwargs.get("instance") is not None or kwargs.get("source_ami") is not None:
                ami.state = "pending"
                emulation._later(ami)

        self._original_init = original
        setattr(Ami, "__init__", init)  # noqa: B010 (moto's class, patched for the demo)

    def _later(self, ami: Any) -> None:
        def finish() -> None:
            if ami.state == "pending":
                ami.state = "available"

        timer = threading.Timer(max(0.0, self.available_after), finish)
        timer.daemon = True
        with self._lock:
            if self._stopped:
                return
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()
