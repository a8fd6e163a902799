"""Dates and moments given as text, in query parameters and CLI options: one reading for all.

A value is an ISO 8601 date (``YYYY-MM-DD``) or a date and time to the minute at
least, with an optional zone (``Z``, ``+01:00``). Unix times (``1700000000``,
``-1``), week dates, the basic format and hour-only times are refused, so every
route and command accepts the same texts. Each caller words its own
refusal (an HTTP envelope, a pydantic error, a CLI message) from the
``ValueError`` raised here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

NOT_ISO = "must be an ISO 8601 date or date-time"
OUT_OF_RANGE = "date-time out of range"

# A date, or a date and a time to the minute at least, with an optional zone.
_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_SPACE_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def read(text: str) -> date | datetime:
    """A bare date stays a date (an end bound covers its whole day); a date-time keeps its
    zone, or has none when the text names none."""
    # An unencoded "+01:00" in a query string arrives as " 01:00".
    text = _SPACE_OFFSET.sub(r"\1+\2", text.strip())
    if not _SHAPE.fullmatch(text):
        raise ValueError(NOT_ISO)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(NOT_ISO) from None


def in_utc(moment: datetime) -> datetime:
    """A date-time without a zone is UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+05:00 is before the first representable instant.
        raise ValueError(OUT_OF_RANGE) from None


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def earliest(value: date | datetime) -> datetime:
    """A lower bound as a UTC moment: a bare date from its midnight."""
    return in_utc(value) if isinstance(value, datetime) else start_of_day(value)


def until(value: date | datetime) -> datetime:
    """An exclusive upper bound as a UTC moment: a bare date includes its whole day."""
    if isinstance(value, datetime):
        return in_utc(value)
    try:
        return start_of_day(value + timedelta(days=1))
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None


def instant(text: str, *, end: bool = False) -> datetime:
    """An aware UTC moment; a bare date is its first instant, or its last when ``end``."""
    value = read(text)
    if isinstance(value, datetime):
        return in_utc(value)
    moment = start_of_day(value)
    if end:
        try:
            # Inclusive bounds: the last instant of the day.
            moment = moment + timedelta(days=1) - timedelta(microseconds=1)
        except OverflowError:
            raise ValueError(OUT_OF_RANGE) from None
    return moment


def _day_or_moment(value: Any) -> date | datetime:
    if isinstance(value, datetime):
        return in_utc(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(NOT_ISO)
    found = read(value)
    return in_utc(found) if isinstance(found, datetime) else found


# A query parameter that keeps a bare date as a date, for services that bound by whole days.
DayOrMoment = Annotated[
    date | datetime,
    PlainValidator(_day_or_moment),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A date (YYYY-MM-DD, the whole day) or an ISO 8601 date-time.",
        }
    ),
]
