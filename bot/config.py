"""Configuration: environment, a `.env` file and an optional YAML file (`AMIBOT_CONFIG`).

The environment wins over `.env`, which wins over the YAML file. Durations and lists are
parsed here, once. A bad configuration raises ConfigError with one line per problem
(name, value, what is expected); secrets are never echoed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from bot.durations import parse_duration
from bot.errors import ConfigError
from bot.regions import known_regions
from bot.scheduler import cron_trigger

SLACK_API_DEFAULT = "https://slack.com/api/"
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_PRINCIPAL = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


def _off_is_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none", "false", "disabled"):
        return None
    return value


def _alias(value: str) -> str:
    if not _ALIAS.match(value):
        raise ValueError("account aliases must be lowercase letters, digits, - or _ (at most 40)")
    return value


Alias = Annotated[str, AfterValidator(_alias)]
Csv = Annotated[list[str], NoDecode, BeforeValidator(_split)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Account(BaseModel):
    """Another AWS account, reached with STS AssumeRole."""

    role_arn: str
    external_id: str | None = None
    regions: list[str] | None = None  # None: AMIBOT_REGIONS; else the only ones of them used here

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str) -> str:
        if not _ROLE_ARN.match(value):
            raise ValueError("expected an IAM role ARN like arn:aws:iam::123456789012:role/amibot")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    redis_url: str = "redis://localhost:6379/0"
    amibot_key_prefix: str = "amibot:"
    aws_default_region: str | None = None
    amibot_regions: Csv = Field(default_factory=list)
    amibot_accounts: dict[Alias, Account] = Field(default_factory=dict)
    amibot_notify_channel: str | None = None
    amibot_approval_channel: str | None = None
    amibot_approvers: Csv = Field(default_factory=list)
    amibot_admins: Csv = Field(default_factory=list)
    amibot_allowed_channels: Csv = Field(default_factory=list)
    amibot_poll_interval: float = Field(default=15.0, gt=0, le=3600)
    amibot_max_wait: Duration = timedelta(hours=12)
    amibot_approval_ttl: Duration = timedelta(hours=24)
    amibot_reminder_interval: Duration = timedelta(hours=4)
    amibot_retention_days: float = Field(default=30, ge=0, le=36500)
    amibot_keep_last: int = Field(default=3, ge=0, le=100)
    amibot_protect_tag: str = Field(default="amibot:keep", min_length=1, max_length=128)
    amibot_prune_schedule: Annotated[str | None, BeforeValidator(_off_is_none)] = None
    amibot_prune_notice: Duration = timedelta(days=3)
    amibot_allow_self_approval: bool = False
    amibot_team_id: str | None = None
    # Not in the spec's table; documented in the README.
    amibot_lease: Duration = timedelta(seconds=30)
    amibot_notfound_grace: Duration = timedelta(minutes=5)
    amibot_workers: int = Field(default=4, ge=1, le=64)
    amibot_worker_nice: int = Field(default=10, ge=0, le=19)
    amibot_price_per_gib_month: float = Field(default=0.05, ge=0)
    amibot_log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls))

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("expected redis://host:port/db, rediss://… or unix://…")
        return value

    @field_validator("amibot_regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in known_regions()]
        if unknown:
            raise ValueError(f"not AWS regions: {', '.join(unknown)}")
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        return value

    @field_validator("amibot_notify_channel", "amibot_approval_channel", "amibot_team_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("amibot_allowed_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _CHANNEL.match(c)]
        if bad:
            raise ValueError(f"expected channel ids like C0123ABCD, got {', '.join(bad)}")
        return value

    @field_validator("amibot_approvers", "amibot_admins")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not _PRINCIPAL.match(p)]
        if bad:
            raise ValueError(f"expected Slack user ids (U…/W…) or user group ids (S…), got {', '.join(bad)}")
        return value

    @field_validator("amibot_prune_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(f"expected a 5-field cron string like '0 6 * * 1' ({exc})") from None
        return value

    @field_validator("amibot_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    # Derived values -------------------------------------------------------------------------

    @property
    def regions(self) -> tuple[str, ...]:
        """Regions the bot may act in; the first is the default."""
        if self.amibot_regions:
            return tuple(self.amibot_regions)
        return (self.aws_default_region,) if self.aws_default_region else ()

    @property
    def approval_channel(self) -> str | None:
        return self.amibot_approval_channel or self.amibot_notify_channel

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.amibot_retention_days)

    def secret_values(self) -> list[str]:
        """Every secret, so that logging can redact it."""
        secrets = [self.slack_bot_token, self.slack_app_token, self.slack_signing_secret]
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


class _YamlSource(PydanticBaseSettingsSource):
    """The YAML file named by AMIBOT_CONFIG; keys are the same names (any case); `accounts:` too."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("AMIBOT_CONFIG")
        if not path:
            return {}
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"AMIBOT_CONFIG={path!r}: cannot read the YAML file ({exc})"]) from None
        if not isinstance(data, dict):
            raise ConfigError([f"AMIBOT_CONFIG={path!r}: expected a mapping of NAME: value"])
        out = {str(k).lower(): v for k, v in data.items()}
        if "accounts" in out:
            out.setdefault("amibot_accounts", out.pop("accounts"))
        return out


def load_settings(overrides: Mapping[str, Any] | None = None, *, env_file: str | None = ".env") -> Settings:
    """Build Settings from the environment (and `overrides`, which win) or raise ConfigError."""
    try:
        settings = Settings(_env_file=env_file, **dict(overrides or {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError([_problem(err) for err in exc.errors()]) from None
    problems = _cross_checks(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _problem(err: Mapping[str, Any]) -> str:
    loc = err.get("loc") or ("?",)
    name = str(loc[0]).upper()
    detail = ".".join(str(p) for p in loc[1:])
    value = err.get("input")
    shown = (
        "(secret)" if name in _SECRET_NAMES else repr(value) if not isinstance(value, dict) else "(mapping)"
    )
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    where = f"{name}.{detail}" if detail else name
    return f"{where}={shown}: {msg}"


_SECRET_NAMES = {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"}


def _cross_checks(settings: Settings) -> list[str]:
    problems = []
    if not settings.regions:
        problems.append("AMIBOT_REGIONS='': expected at least one region (or set AWS_DEFAULT_REGION)")
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if bot_token and not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN=(secret): expected a bot token starting with xoxb-")
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    if app_token and not app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN=(secret): expected an app-level token starting with xapp-")
    for channel_name in ("amibot_notify_channel", "amibot_approval_channel"):
        channel = getattr(settings, channel_name)
        if channel is not None and not _CHANNEL.match(channel):
            problems.append(f"{channel_name.upper()}={channel!r}: expected a channel id like C0123ABCD")
    if settings.amibot_team_id is not None and not re.match(r"^T[A-Z0-9]{2,}$", settings.amibot_team_id):
        problems.append(f"AMIBOT_TEAM_ID={settings.amibot_team_id!r}: expected a workspace id like T0123ABCD")
    for alias, account in settings.amibot_accounts.items():
        if account.regions is not None and not account.regions:
            problems.append(f"AMIBOT_ACCOUNTS.{alias}.regions=[]: list at least one region, or leave it out")
        for region in account.regions or ():
            if region not in known_regions():
                problems.append(f"AMIBOT_ACCOUNTS.{alias}.regions={region!r}: not an AWS region")
            elif settings.regions and region not in settings.regions:
                problems.append(
                    f"AMIBOT_ACCOUNTS.{alias}.regions={region!r}: not in AMIBOT_REGIONS "
                    f"({', '.join(settings.regions)}); an account's regions narrow AMIBOT_REGIONS"
                )
    if settings.amibot_max_wait <= timedelta(0) or settings.amibot_approval_ttl <= timedelta(0):
        problems.append("AMIBOT_MAX_WAIT / AMIBOT_APPROVAL_TTL: expected a positive duration")
    return problems


def check_runnable(settings: Settings, *, http: bool) -> None:
    """What `amibot run` needs beyond a valid configuration."""
    problems = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN is not set: required to run (a bot token, xoxb-…)")
    if http and settings.slack_signing_secret is None:
        problems.append("SLACK_SIGNING_SECRET is not set: required in HTTP mode")
    if problems:
        raise ConfigError(problems)
