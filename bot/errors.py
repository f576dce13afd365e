"""The error hierarchy. Every message here is fit to show a Slack user as is.

One place (handlers.replies) maps these to replies; anything else is a bug, logged
with a traceback and shown to the user only as a short reference id.
"""

from __future__ import annotations


class AmibotError(Exception):
    """Base of every error whose message may be shown to a Slack user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(AmibotError):
    """Bad input or a refused request. `usage` is the usage line of the subcommand, if any."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class PermissionDenied(UserError):
    """The user may not do this."""


class AwsError(AmibotError):
    """An AWS call failed; `message` is one readable line, `code` the AWS error code."""

    def __init__(self, message: str, code: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class StoreUnavailable(AmibotError):
    """Redis cannot be reached; nothing was changed."""

    def __init__(self, message: str = "state store unavailable, try again") -> None:
        super().__init__(message)


class ConfigError(Exception):
    """A bad configuration: one line per problem (name, value, what is expected)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
