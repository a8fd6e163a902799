"""Span times are nanoseconds since the epoch; the API speaks UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_NS = 2**63 - 1


def moment(ns: int) -> datetime:
    """The UTC datetime of a nanosecond timestamp (to the microsecond)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def to_ns(when: datetime) -> int:
    """Nanoseconds since the epoch, clamped to what a BIGINT column holds."""
    delta = when - EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return max(0, min(ns, MAX_NS))
