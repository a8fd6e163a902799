"""What a caller may filter and sort traces, spans and sessions by (no HTTP here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


STATUS_CODES = {Status.UNSET: 0, Status.OK: 1, Status.ERROR: 2}
STATUS_NAMES = {code: status.value for status, code in STATUS_CODES.items()}


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool


# A list filter (``?tag=a&tag=b``) takes at most this many values: more is a 400,
# never a statement that grows with the URL.
MAX_LIST_VALUES = 20


@dataclass(frozen=True)
class TraceFilters:
    """A trace matches when it starts in [start_ns, end_ns] and any span matches each field."""

    start_ns: int | None = None
    end_ns: int | None = None
    status: Status | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    model: str | None = None
    dataset_run_id: str | None = None
    # The key that sent the trace's first spans.
    api_key_id: str | None = None
    # True: only traces with a score on the trace id; False: only those without.
    has_score: bool | None = None
    sort: Sort = Sort("start_time", descending=True)


@dataclass(frozen=True)
class SpanFilters:
    """``user_id`` and ``session_id`` match the span's trace, as the SDK sets them on its root."""

    trace_id: str | None = None
    type: str | None = None
    status: Status | None = None
    name: str | None = None
    model: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    user_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class SessionFilters:
    """A session matches when it was active in [start_ns, end_ns]."""

    search: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    sort: Sort = Sort("last_seen", descending=True)


# Sort keys a caller may name, with the names the reference API uses as aliases.
TRACE_SORTS = {
    "start_time": "start_time",
    "start": "start_time",
    "timestamp": "start_time",
    "end_time": "end_time",
    "end": "end_time",
    "duration": "duration",
    "latency": "duration",
    "latency_ms": "duration",
    "cost": "cost",
    "tokens": "tokens",
    "name": "name",
    "span_count": "span_count",
}
SESSION_SORTS = {
    "last_seen": "last_seen",
    "end": "last_seen",
    "end_time": "last_seen",
    "first_seen": "first_seen",
    "start": "first_seen",
    "start_time": "first_seen",
    "trace_count": "trace_count",
    "cost": "cost",
    "total_cost": "cost",
    "tokens": "tokens",
    "total_tokens": "tokens",
    "duration": "duration",
    "latency_ms": "duration",
    "name": "name",
}
