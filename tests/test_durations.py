from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.durations import MAX_DURATION, format_duration, parse_duration, parse_user_duration

# --------------------------------------------------------------------------- parse_duration (config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("0.5s", timedelta(milliseconds=500)),
        (".5s", timedelta(milliseconds=500)),
        ("90s", timedelta(seconds=90)),
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("6w", timedelta(weeks=6)),
        ("1.5h", timedelta(minutes=90)),
        ("15", timedelta(seconds=15)),
        ("0.25", timedelta(milliseconds=250)),
        ("  12H ", timedelta(hours=12)),
        ("3 d", timedelta(days=3)),
        ("1h30m", timedelta(minutes=90)),
        ("1d 2h 3m 4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("3650d", MAX_DURATION),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "“abc” is not a duration"),
        ("12x", "“12x” is not a duration"),
        ("1e3", "“1e3” is not a duration"),
        ("inf", "“inf” is not a duration"),
        ("nan", "“nan” is not a duration"),
        ("١٢s", "is not a duration"),  # Arabic-Indic digits are not accepted
        ("5s5", "“5s5” is not a duration"),
        ("1h-30m", "is not a duration"),
        ("-5s", "negative"),
        ("-1", "negative"),
        ("0", "greater than zero"),
        ("0s", "greater than zero"),
        ("0.0000001s", "greater than zero"),  # rounds to zero microseconds
        ("3651d", "too long"),
        ("99999999999999999999999w", "too long"),
    ],
)
def test_parse_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_parse_duration_error_names_the_accepted_forms() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("soon")
    assert "250ms" in str(info.value) and "12h" in str(info.value) and "seconds" in str(info.value)


# --------------------------------------------------------------------------- parse_user_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("6w", timedelta(weeks=6)),
        ("1M", timedelta(minutes=1)),
        ("030d", timedelta(days=30)),
        (" 7d ", timedelta(days=7)),
        ("3650d", MAX_DURATION),
        ("521w", timedelta(weeks=521)),
    ],
)
def test_parse_user_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_user_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty value is not a duration"),
        ("0d", "greater than zero"),
        ("000m", "greater than zero"),
        ("-5d", "“-5d” is not a duration"),
        ("1.5h", "“1.5h” is not a duration"),
        ("90", "“90” is not a duration"),
        ("90s", "“90s” is not a duration"),
        ("250ms", "“250ms” is not a duration"),
        ("5y", "“5y” is not a duration"),
        ("1h30m", "“1h30m” is not a duration"),
        ("30 d", "“30 d” is not a duration"),
        ("3651d", "too long"),
        ("522w", "too long"),
        ("99999999999999999999999999d", "too long"),
    ],
)
def test_parse_user_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_user_duration(text)
    if "not a duration" in fragment:
        assert "90m, 12h, 30d or 6w" in str(info.value)


def test_error_messages_truncate_long_values() -> None:
    with pytest.raises(ValueError) as info:
        parse_user_duration("x" * 1000)
    assert len(str(info.value)) < 300 and "…" in str(info.value)


# --------------------------------------------------------------------------- format_duration


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=-5), "0s"),
        (timedelta(microseconds=999), "0s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(milliseconds=999, microseconds=999), "999ms"),
        (timedelta(seconds=1), "1s"),
        (timedelta(milliseconds=1500), "1.5s"),
        (timedelta(milliseconds=1250), "1.25s"),
        (timedelta(seconds=42), "42s"),
        (timedelta(seconds=59, milliseconds=999), "59.999s"),
        (timedelta(minutes=1), "1m"),
        (timedelta(minutes=1, milliseconds=500), "1m"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(hours=12), "12h"),
        (timedelta(days=30), "30d"),
        (timedelta(weeks=6), "42d"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        (timedelta(days=2, seconds=5), "2d5s"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def _displayed(td: timedelta) -> timedelta:
    """What format_duration keeps: milliseconds below a minute, whole seconds from a minute on."""
    if td < timedelta(minutes=1):
        return timedelta(milliseconds=td // timedelta(milliseconds=1))
    return timedelta(seconds=td // timedelta(seconds=1))


@given(st.timedeltas(min_value=timedelta(milliseconds=1), max_value=MAX_DURATION))
def test_format_then_parse_round_trips(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == _displayed(td)


@given(st.integers(min_value=1, max_value=3650 * 24 * 60), st.sampled_from(["m", "h", "d", "w"]))
def test_user_durations_round_trip(n: int, unit: str) -> None:
    expected = timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: n})
    if expected > MAX_DURATION:
        with pytest.raises(ValueError, match="too long"):
            parse_user_duration(f"{n}{unit}")
        return
    assert parse_user_duration(f"{n}{unit}") == expected
    assert parse_duration(f"{n}{unit}") == expected
    assert parse_duration(format_duration(expected)) == expected


@given(st.text(max_size=40))
def test_parsers_raise_only_value_error(text: str) -> None:
    for parser in (parse_duration, parse_user_duration):
        try:
            result = parser(text)
        except ValueError as exc:
            assert str(exc)
        else:
            assert timedelta(0) < result <= MAX_DURATION
