"""Every identifier Slack and users see, in one place: action ids, callback ids, job ids."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum

COMMAND = "/ami"


class ActionId(StrEnum):
    """Every block action amibot handles (tests check each one is registered)."""

    APPROVE = "ami_approve"
    REJECT = "ami_reject"
    CANCEL = "ami_cancel"
    HOME_REFRESH = "ami_home_refresh"
    KEEP = "ami_keep"


class CallbackId(StrEnum):
    """Every view (modal) callback amibot handles."""

    REJECT_MODAL = "ami_reject_modal"
    CREATE_MODAL = "ami_create_modal"


class OptionsId(StrEnum):
    """Every external select whose options amibot serves (block_suggestion requests)."""

    CREATE_INSTANCE = "ami_create_instance"


class Event(StrEnum):
    """Every Events API event amibot subscribes to (must match manifest.yml)."""

    APP_HOME_OPENED = "app_home_opened"


APPROVAL_ID = re.compile(r"^a-[0-9a-f]{6}$")


def new_job_id() -> str:
    return f"j-{secrets.token_hex(3)}"


def new_token() -> str:
    """An opaque unique token (lease owners, outbox item ids)."""
    return secrets.token_hex(8)
