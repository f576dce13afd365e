"""Durations: parsing for configuration and for slash commands, and compact formatting.

Two grammars on purpose:

* `parse_duration` reads configuration values (`AMIBOT_MAX_WAIT=12h`, `AMIBOT_POLL_INTERVAL=15`):
  a number with an optional unit (`250ms`, `0.5s`, `90s`, `90m`, `12h`, `30d`, `6w`), decimals
  allowed, a bare number means seconds; several parts may be combined (`1h30m`, `1d 2h`), which is
  exactly what `format_duration` writes, so its output can be read back.
* `parse_user_duration` reads `--older-than` in `/ami`: only a positive whole number with `m`, `h`,
  `d` or `w` (`90m`, `12h`, `30d`, `6w`), as the SPEC documents it.

Both refuse zero, negative values and anything over `MAX_DURATION` with a `ValueError` whose
message is fit to show as is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["MAX_DURATION", "format_duration", "parse_duration", "parse_user_duration"]

#: The longest duration either parser accepts: 10 years (of 365 days).
MAX_DURATION = timedelta(days=3650)

_MICROS = {
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_MAX_MICROS = MAX_DURATION // timedelta(microseconds=1)

# ASCII digits only: `\d` would also match other scripts' digits.
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_BARE = re.compile(rf"{_NUMBER}")
_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h|d|w)")
_PARTS = re.compile(rf"(?:\s*{_NUMBER}\s*(?:ms|s|m|h|d|w))+\s*")
_USER = re.compile(r"([0-9]+)([mhdw])")

_CONFIG_FORMS = "a number with a unit ms, s, m, h, d or w (like 250ms, 0.5s, 90m, 12h, 30d, 6w, 1h30m)"
_USER_FORMS = (
    "a whole number followed by m, h, d or w (minutes, hours, days, weeks), like 90m, 12h, 30d or 6w"
)


def _show(text: str) -> str:
    short = text if len(text) <= 40 else text[:40] + "…"
    return "“" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in short) + "”"


def _checked(text: str, micros: int) -> timedelta:
    if micros <= 0:
        raise ValueError(f"{_show(text)} is not a positive duration; it must be greater than zero")
    if micros > _MAX_MICROS:
        raise ValueError(
            f"{_show(text)} is too long; the longest duration is {format_duration(MAX_DURATION)}"
        )
    return timedelta(microseconds=micros)


def parse_duration(text: str) -> timedelta:
    """A configuration duration: `250ms`, `0.5s`, `90`, `90m`, `12h`, `30d`, `6w`, `1h30m`.

    Units are case-insensitive; a bare number means seconds. Sub-microsecond precision is rounded.
    """
    stripped = text.strip().lower()
    if stripped.startswith("-"):
        raise ValueError(f"{_show(text)} is negative; a duration must be greater than zero")
    total = Decimal(0)
    try:
        if _BARE.fullmatch(stripped):
            total = Decimal(stripped) * _MICROS["s"]
        elif _PARTS.fullmatch(stripped):
            for number, unit in _PART.findall(stripped):
                total += Decimal(number) * _MICROS[unit]
        else:
            hint = "an empty value" if not stripped else _show(text)
            raise ValueError(f"{hint} is not a duration: use {_CONFIG_FORMS}; a bare number means seconds")
    except InvalidOperation:  # pragma: no cover - the regexes only let valid decimals through
        raise ValueError(f"{_show(text)} is not a duration: use {_CONFIG_FORMS}") from None
    if total > _MAX_MICROS:
        raise ValueError(
            f"{_show(text)} is too long; the longest duration is {format_duration(MAX_DURATION)}"
        )
    return _checked(text, int(total.to_integral_value(rounding=ROUND_HALF_EVEN)))


def parse_user_duration(text: str) -> timedelta:
    """A duration typed in `/ami`: a positive whole number with `m`, `h`, `d` or `w` (`90m`, `6w`)."""
    stripped = text.strip().lower()
    match = _USER.fullmatch(stripped)
    if match is None:
        what = "an empty value" if not stripped else _show(text)
        raise ValueError(f"{what} is not a duration: use {_USER_FORMS}")
    digits, unit = match.groups()
    digits = digits.lstrip("0") or "0"
    if len(digits) > 12:  # far beyond the cap; don't build a huge int
        raise ValueError(
            f"{_show(text)} is too long; the longest duration is {format_duration(MAX_DURATION)}"
        )
    return _checked(text, int(digits) * _MICROS[unit])


def format_duration(td: timedelta) -> str:
    """Compact and human: `250ms`, `1.5s`, `42s`, `1h30m`, `30d`, `1d2h3m4s`.

    Below a second: whole milliseconds. Below a minute: seconds with up to three decimals.
    From a minute on: days, hours, minutes and whole seconds (parts that are zero are left out;
    weeks are shown as days). Zero, negative values (clock skew) and anything under a millisecond
    are `0s`. `parse_duration` reads every result back.
    """
    micros = td // timedelta(microseconds=1)
    if micros < 1_000:
        return "0s"
    if micros < 1_000_000:
        return f"{micros // 1_000}ms"
    if micros < 60_000_000:
        millis = micros // 1_000
        seconds, fraction = divmod(millis, 1_000)
        return f"{seconds}s" if fraction == 0 else f"{seconds}.{fraction:03d}".rstrip("0") + "s"
    seconds = micros // 1_000_000
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value)
