"""One reading of dates and moments for every query parameter and CLI option."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from agentmark_gateway.errors import BadRequest
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.traces.params import parse_instant

DAY_OR_MOMENT: TypeAdapter[Any] = TypeAdapter(DayOrMoment)


def _trace_filter_accepts(text: str) -> bool:
    try:
        parse_instant(text, "start_date")
    except BadRequest:
        return False
    return True


def _score_filter_accepts(text: str) -> bool:
    try:
        DAY_OR_MOMENT.validate_python(text)
    except ValidationError:
        return False
    return True


TEXTS = [
    "2025-01-01",
    "2025-01-01T10:00",
    "2025-01-01 10:00:00",
    "2025-01-01T10:00:00.1234567Z",
    "2025-01-01T10:00:00+01:00",
    "2025-01-01T10:00:00 01:00",
    "20250101",
    "2025-W01-1",
    "2025-01-01T10",
    "1700000000",
    "2025-13-01",
]


def test_trace_and_score_filters_accept_and_refuse_the_same_texts():
    assert [_trace_filter_accepts(t) for t in TEXTS] == [_score_filter_accepts(t) for t in TEXTS]


@pytest.mark.parametrize("text", ["20250101", "2025-W01-1", "2025-01-01T10"])
def test_basic_format_week_dates_and_hour_only_times_are_refused_everywhere(text):
    assert not _trace_filter_accepts(text) and not _score_filter_accepts(text)


def test_an_unencoded_plus_in_an_offset_is_read_as_a_plus_everywhere():
    expected = datetime(2025, 1, 1, 9, tzinfo=UTC)
    assert parse_instant("2025-01-01T10:00:00 01:00", "start_date") == expected
    assert DAY_OR_MOMENT.validate_python("2025-01-01T10:00:00 01:00") == expected
