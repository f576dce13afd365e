"""boto3 clients per account and region: retry mode for throttling, timeouts, assumed roles.

Clients are built lazily, cached and shared between threads (boto3 clients are thread-safe;
sessions are not, so building happens under a lock). Credentials of other accounts come from
STS AssumeRole and are refreshed by botocore before they expire.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from bot.aws.errors import translate
from bot.config import Account

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

# called after every AWS call: (service, operation, outcome)
CallHook = Callable[[str, str, str], None]

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)
# For calls Slack waits on (the options of an external select must arrive within 3 s): one try.
QUICK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 1},
    connect_timeout=1,
    read_timeout=2,
    max_pool_connections=8,
)


class AwsClients:
    def __init__(
        self,
        accounts: Mapping[str, Account],
        *,
        on_call: CallHook | None = None,
        session_factory: Callable[[], boto3.session.Session] = boto3.session.Session,
    ) -> None:
        self._accounts = accounts
        self._on_call = on_call
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self._sessions: dict[str, boto3.session.Session] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}

    def ec2(self, account: str | None, region: str) -> EC2Client:
        return self._client("ec2", account, region)  # type: ignore[no-any-return,unused-ignore]

    def autoscaling(self, account: str | None, region: str) -> AutoScalingClient:
        return self._client("autoscaling", account, region)  # type: ignore[no-any-return,unused-ignore]

    def ec2_quick(self, account: str | None, region: str) -> EC2Client:
        """An EC2 client with short timeouts and no retries, for answers Slack waits on."""
        return self._client("ec2", account, region, quick=True)  # type: ignore[no-any-return,unused-ignore]

    def _client(self, service: str, account: str | None, region: str, *, quick: bool = False) -> Any:
        key = (service + ("/quick" if quick else ""), account or "", region)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session: Any = self._session(account)
                config = QUICK_CONFIG if quick else RETRY_CONFIG
                client = session.client(service, region_name=region, config=config)
                if self._on_call is not None:
                    self._hook(client, service)
                self._clients[key] = client
            return client

    def _session(self, account: str | None) -> boto3.session.Session:
        name = account or ""
        session = self._sessions.get(name)
        if session is None:
            session = self._session_factory() if not account else self._assumed_session(account)
            self._sessions[name] = session
        return session

    def _assumed_session(self, alias: str) -> boto3.session.Session:
        spec = self._accounts[alias]
        sts = self._session_factory().client("sts", config=RETRY_CONFIG)

        def refresh() -> dict[str, str]:
            params: dict[str, Any] = {"RoleArn": spec.role_arn, "RoleSessionName": f"amibot-{alias}"}
            if spec.external_id:
                params["ExternalId"] = spec.external_id
            try:
                creds = sts.assume_role(**params)["Credentials"]
            except Exception as exc:
                raise translate(exc, region="sts", action=f"assume the role of account {alias}") from exc
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].astimezone(UTC).isoformat(),
            }

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        core: Any = botocore.session.get_session()
        core._credentials = credentials
        return boto3.session.Session(botocore_session=core)

    def _hook(self, client: Any, service: str) -> None:
        hook = self._on_call
        assert hook is not None

        def after_call(parsed: Any = None, model: Any = None, **_: Any) -> None:
            error = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
            hook(service, getattr(model, "name", "?"), error or "ok")

        def after_error(model: Any = None, exception: Any = None, **_: Any) -> None:
            if exception is not None:
                hook(service, getattr(model, "name", "?"), type(exception).__name__)

        client.meta.events.register("after-call", after_call)
        client.meta.events.register("after-call-error", after_error)
