"""Configuration: env, .env and YAML sources, precedence, and one clear line per problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import check_runnable, load_settings
from bot.errors import ConfigError

BASE = {"AMIBOT_REGIONS": "us-east-1,eu-west-1"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("AMIBOT_", "SLACK_", "REDIS_", "AWS_DEFAULT_REGION")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in {**BASE, **values}.items():
        monkeypatch.setenv(key, value)


def test_defaults_follow_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch)
    s = load_settings()
    assert s.regions == ("us-east-1", "eu-west-1")
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.amibot_key_prefix == "amibot:"
    assert s.amibot_poll_interval == 15
    assert s.amibot_max_wait == timedelta(hours=12)
    assert s.amibot_approval_ttl == timedelta(hours=24)
    assert s.amibot_reminder_interval == timedelta(hours=4)
    assert s.retention == timedelta(days=30)
    assert s.amibot_keep_last == 3
    assert s.amibot_protect_tag == "amibot:keep"
    assert s.amibot_prune_schedule is None
    assert s.amibot_prune_notice == timedelta(days=3)
    assert s.amibot_allow_self_approval is False
    assert s.slack_api_url == "https://slack.com/api/"


def test_regions_default_to_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert load_settings().regions == ("eu-central-1",)


def test_lists_durations_and_channels_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    env(
        monkeypatch,
        AMIBOT_APPROVERS="U111, S222",
        AMIBOT_ADMINS="U999",
        AMIBOT_NOTIFY_CHANNEL="C123ABC",
        AMIBOT_MAX_WAIT="90m",
        AMIBOT_POLL_INTERVAL="0.25",
        AMIBOT_PRUNE_SCHEDULE="0 6 * * 1",
        SLACK_API_URL="http://127.0.0.1:9999/api",
    )
    s = load_settings()
    assert s.amibot_approvers == ["U111", "S222"]
    assert s.amibot_max_wait == timedelta(minutes=90)
    assert s.amibot_poll_interval == 0.25
    assert s.approval_channel == "C123ABC"  # defaults to the notify channel
    assert s.amibot_prune_schedule == "0 6 * * 1"
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"


def test_every_problem_is_reported_once_with_name_value_and_expectation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env(
        monkeypatch,
        AMIBOT_REGIONS="us-east-1,mars-north-1",
        AMIBOT_POLL_INTERVAL="soon",
        AMIBOT_MAX_WAIT="forever",
        AMIBOT_APPROVERS="bob",
        AMIBOT_PRUNE_SCHEDULE="every monday",
        AMIBOT_KEEP_LAST="-1",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    problems = caught.value.problems
    names = [p.split("=", 1)[0] for p in problems]
    assert sorted(names) == sorted(
        [
            "AMIBOT_REGIONS",
            "AMIBOT_POLL_INTERVAL",
            "AMIBOT_MAX_WAIT",
            "AMIBOT_APPROVERS",
            "AMIBOT_PRUNE_SCHEDULE",
            "AMIBOT_KEEP_LAST",
        ]
    )
    text = "\n".join(problems)
    assert "mars-north-1" in text and "'soon'" in text and "'bob'" in text and "cron" in text


def test_secrets_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch, SLACK_BOT_TOKEN="not-a-bot-token-secret123")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "secret123" not in str(caught.value)
    assert "SLACK_BOT_TOKEN" in str(caught.value)


def test_run_requires_token_and_signing_secret_in_http_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch)
    with pytest.raises(ConfigError) as caught:
        check_runnable(load_settings(), http=True)
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    env(monkeypatch, SLACK_BOT_TOKEN="xoxb-1")
    check_runnable(load_settings(), http=False)  # socket mode needs no signing secret


def test_yaml_file_and_dotenv_with_env_winning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "amibot.yml"
    config.write_text(
        "AMIBOT_REGIONS: [us-west-2, us-east-1]\n"
        "AMIBOT_KEEP_LAST: 5\n"
        "AMIBOT_RETENTION_DAYS: 10\n"
        "accounts:\n"
        "  prod:\n"
        "    role_arn: arn:aws:iam::123456789012:role/amibot\n"
        "    external_id: xyz\n"
    )
    (tmp_path / ".env").write_text("AMIBOT_KEEP_LAST=7\nAMIBOT_PROTECT_TAG=keepme\n")
    monkeypatch.setenv("AMIBOT_CONFIG", str(config))
    monkeypatch.setenv("AMIBOT_PROTECT_TAG", "from-env")
    s = load_settings()
    assert s.regions == ("us-west-2", "us-east-1")  # YAML
    assert s.amibot_keep_last == 7  # .env beats YAML
    assert s.amibot_protect_tag == "from-env"  # environment beats .env
    assert s.retention == timedelta(days=10)
    assert s.amibot_accounts["prod"].role_arn.endswith(":role/amibot")
    assert s.amibot_accounts["prod"].external_id == "xyz"


def test_bad_yaml_accounts_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "amibot.yml"
    config.write_text("AMIBOT_REGIONS: us-east-1\naccounts:\n  Prod!:\n    role_arn: nope\n")
    monkeypatch.setenv("AMIBOT_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    text = "\n".join(caught.value.problems)
    assert "role ARN" in text
    assert "aliases" in text


def test_unreadable_yaml_is_one_clear_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AMIBOT_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("AMIBOT_CONFIG=")
