"""The one place where errors become replies. Users never see a stack trace."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from bot.context import Reply
from bot.errors import AwsError, StoreUnavailable, UserError

log = logging.getLogger(__name__)


def answer(fn: Callable[[], Reply | None]) -> Reply | None:
    """Run a service call; map every failure to a reply fit for Slack."""
    try:
        return fn()
    except UserError as exc:
        text = f"⚠️ {exc.message}"
        if exc.usage:
            text += f"\nUsage: `{exc.usage}`"
        log.info("refused", extra={"reason": exc.message})
        return Reply(text)
    except StoreUnavailable as exc:
        log.warning("state store unavailable")
        return Reply(f"⚠️ {exc.message}")
    except AwsError as exc:
        log.info("aws error", extra={"error": exc.message, "code": exc.code})
        return Reply(f"❌ {exc.message}")
    except Exception:
        ref = secrets.token_hex(4)
        log.exception("unexpected error", extra={"ref": ref})
        return Reply(f"❌ Something went wrong on amibot's side (ref `{ref}`). Nothing was changed.")
