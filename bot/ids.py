"""Every identifier Slack and users see, in one place: action ids, callback ids, job ids."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum

COMMAND = "/ami"


class ActionId(StrEnum):
    APPROVE = "ami_approve"
    REJECT = "ami_reject"
    KEEP = "ami_keep"
    CANCEL = "ami_cancel"
    HOME_REFRESH = "ami_home_refresh"
    INSTANCE_SELECT = "ami_instance_select"


class CallbackId(StrEnum):
    CREATE_MODAL = "ami_create_modal"
    REJECT_MODAL = "ami_reject_modal"


class Event(StrEnum):
    APP_HOME_OPENED = "app_home_opened"


JOB_ID = re.compile(r"^j-[0-9a-f]{6}$")
APPROVAL_ID = re.compile(r"^a-[0-9a-f]{6}$")


def new_job_id() -> str:
    return f"j-{secrets.token_hex(3)}"


def new_approval_id() -> str:
    return f"a-{secrets.token_hex(3)}"


def new_token() -> str:
    """An opaque unique token (lease owners, outbox item ids)."""
    return secrets.token_hex(8)
