"""Turn botocore failures into one readable line (AwsError)."""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from bot.errors import AwsError

# Codes worth trying again later (after botocore's own retries gave up).
# DeregisterImage's answer when the image is gone: e.g. a retried call whose first attempt worked
IMAGE_GONE_CODES = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
RETRYABLE_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "ResourceLimitExceeded",
    }
)

_ID = re.compile(r"\b(i|ami|snap|lt|vol)-[0-9a-f]{8,17}\b")


def translate(error: Exception, *, region: str, action: str = "") -> AwsError:
    """One line a person can read, e.g. "instance i-0abc not found in us-east-1"."""
    if isinstance(error, AwsError):
        return error
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        text = str(err.get("Message", "")).strip()
        return AwsError(_readable(code, text, region, action), code=code, retryable=code in RETRYABLE_CODES)
    if isinstance(error, ConnectionError | ReadTimeoutError):
        return AwsError(
            f"AWS could not be reached in {region}, will retry", code="Connection", retryable=True
        )
    if isinstance(error, BotoCoreError):
        return AwsError(f"AWS call failed in {region}: {error}", code=type(error).__name__, retryable=False)
    return AwsError(f"AWS call failed in {region}: {type(error).__name__}", code=type(error).__name__)


def _readable(code: str, text: str, region: str, action: str) -> str:
    ident = _ID.search(text)
    what = ident.group(0) if ident else ""
    if code.endswith(".NotFound") or code.endswith("NotFoundException"):
        noun = {"InvalidInstanceID": "instance", "InvalidAMIID": "image", "InvalidSnapshot": "snapshot"}.get(
            code.split(".")[0], "resource"
        )
        return f"{noun} {what or '(unknown)'} not found in {region}".replace("  ", " ")
    if code.endswith(".Malformed"):
        return f"malformed id {what or ''} in {region}: {text}".strip()
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"):
        doing = f" to {action}" if action else ""
        return f"amibot's AWS role is not allowed{doing} in {region} ({code})"
    if code in RETRYABLE_CODES:
        return f"AWS is busy in {region} ({code}), will retry"
    prefix = f"{action} failed in {region}" if action else f"AWS error in {region}"
    return f"{prefix}: {text or code} ({code})"
