"""Retention: traces older than their app's window go, with their spans and scores.

An app keeps its traces for ``apps.retention_days`` days, or for
``AGENTMARK_RETENTION_DAYS`` when it has no setting of its own; 0 keeps them for
ever. A trace is as old as its start time (``traces.start_time_ns``, indexed
per app). The app's keys' usage counts (usage/) go by the same window.
Templates, datasets and the audit log are not touched.

The work is cut into small transactions with a rest after each, so ingest
never waits long for the database's write lock (SQLite has one for the whole
file): a transaction deletes at most ``batch_rows`` spans with their scores, or,
once a batch of traces has no spans left, those traces' roll-ups, tags and
scores. The roll-up row goes last: while it exists the trace is still on the
list, so a pass that stops half-way (a restart) is finished by the next one.

The rest is nine times as long as the transaction took (``BUSY_SHARE``): a
pass takes at most a tenth of the time of the database and of the process, and
backs off by itself when the machine is busy (a transaction that waited for
the lock, or for a CPU, took longer). A backlog is worked off slowly; the
traffic goes first.

Every process runs a pass now and then; on PostgreSQL two processes skip each
other's traces (``SKIP LOCKED``), on SQLite their writes queue anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.apps.models import App
from agentmark_gateway.scores.models import Score
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.usage import rollup as usage_rollup

# Spans (with their scores) deleted in one transaction: tens of milliseconds of
# SQLite's write lock.
BATCH_ROWS = 1000
# Traces whose spans are deleted before their roll-ups go, in one transaction.
TRACES_PER_BATCH = 500
# The share of time a pass may take; it rests the remainder after each transaction.
BUSY_SHARE = 0.1
# The shortest rest: ingest's writes take the lock in the gaps.
PAUSE_SECONDS = 0.05
# Between two passes, and before the first (a starting fleet has other work).
PASS_INTERVAL_SECONDS = 3600.0
FIRST_PASS_DELAY_SECONDS = 60.0

NS_PER_DAY = 86_400 * 1_000_000_000

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    """Rows deleted."""

    traces: int = 0
    spans: int = 0
    scores: int = 0
    usage: int = 0  # rows of keys' usage counts

    def add(self, other: Pruned) -> None:
        self.traces += other.traces
        self.spans += other.spans
        self.scores += other.scores
        self.usage += other.usage


async def windows(session: AsyncSession, default_days: int) -> list[tuple[str, int]]:
    """Each app that drops data, with its window in days (its own, else the default)."""
    days = func.coalesce(App.retention_days, default_days)
    rows = await session.execute(select(App.id, days).where(days > 0).order_by(App.id))
    return [(app_id, int(window)) for app_id, window in rows]


def cutoff_ns(days: int, now: float) -> int:
    """Traces that started before this moment (ns since the epoch) are past a window of ``days``."""
    return int(now * 1_000_000_000) - days * NS_PER_DAY


async def _expired_traces(
    session: AsyncSession, app_id: str, before_ns: int, limit: int
) -> Sequence[str]:
    # Oldest first, on the (app_id, start_time_ns) index; locked rows belong to
    # another process's pass (PostgreSQL; SQLite ignores FOR UPDATE).
    query = (
        select(Trace.trace_id)
        .where(Trace.app_id == app_id, Trace.start_time_ns < before_ns)
        .order_by(Trace.start_time_ns)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def prune_step(
    session: AsyncSession,
    app_id: str,
    before_ns: int,
    *,
    batch_rows: int = BATCH_ROWS,
    traces_per_batch: int = TRACES_PER_BATCH,
) -> Pruned | None:
    """One transaction's worth of deleting (not committed); None when nothing is left."""
    trace_ids = await _expired_traces(session, app_id, before_ns, traces_per_batch)
    if not trace_ids:
        return None
    spans = (
        await session.execute(
            select(Span.id, Span.span_id)
            .where(Span.app_id == app_id, Span.trace_id.in_(trace_ids))
            .limit(batch_rows)
        )
    ).all()
    if spans:
        scores = await _delete_scores(session, app_id, [span_id for _, span_id in spans])
        # By row id alone: the ids were just read for this app. With app_id named
        # here too, SQLite walks the app's whole start-time index (0.6 s for 1,000
        # spans of a million) instead of looking the ids up.
        await session.execute(
            delete(Span)
            .where(Span.id.in_([row_id for row_id, _ in spans]))
            .execution_options(synchronize_session=False)
        )
        return Pruned(spans=len(spans), scores=scores)
    # No spans left: the roll-ups go, unless a span arrived for one meanwhile (it is
    # then taken with the next batch, and the roll-up after it).
    no_spans = ~exists().where(Span.app_id == Trace.app_id, Span.trace_id == Trace.trace_id)
    gone = (
        await session.scalars(
            delete(Trace)
            .where(Trace.app_id == app_id, Trace.trace_id.in_(trace_ids), no_spans)
            .returning(Trace.trace_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not gone:
        return Pruned()
    await session.execute(
        delete(TraceTag)
        .where(TraceTag.app_id == app_id, TraceTag.trace_id.in_(gone))
        .execution_options(synchronize_session=False)
    )
    scores = await _delete_scores(session, app_id, gone)
    return Pruned(traces=len(gone), scores=scores)


async def _delete_scores(session: AsyncSession, app_id: str, resource_ids: Sequence[str]) -> int:
    """Scores of these traces or spans (a score names either as its resource)."""
    result = await session.execute(
        delete(Score)
        .where(Score.app_id == app_id, Score.resource_id.in_(resource_ids))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def rest_after(busy_seconds: float, pause: float = PAUSE_SECONDS) -> float:
    """How long to rest after a transaction that took ``busy_seconds``."""
    return max(pause, busy_seconds * (1 - BUSY_SHARE) / BUSY_SHARE) if pause else 0.0


async def prune_app(
    sessionmaker: async_sessionmaker[AsyncSession],
    app_id: str,
    before_ns: int,
    *,
    batch_rows: int = BATCH_ROWS,
    traces_per_batch: int = TRACES_PER_BATCH,
    pause: float = PAUSE_SECONDS,
) -> Pruned:
    """Delete the app's traces that started before ``before_ns``, one small commit at a
    time; ``pause`` 0 (tests) runs the transactions back to back."""
    total = Pruned()
    while True:
        began = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            step = await prune_step(
                session,
                app_id,
                before_ns,
                batch_rows=batch_rows,
                traces_per_batch=traces_per_batch,
            )
        if step is None:
            return total
        total.add(step)
        if step == Pruned():
            # Every trace of the batch got a new span meanwhile, or another process
            # holds them: come back next pass rather than spin.
            return total
        await asyncio.sleep(rest_after(time.perf_counter() - began, pause))


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    default_days: int,
    *,
    now: float | None = None,
    batch_rows: int = BATCH_ROWS,
    pause: float = PAUSE_SECONDS,
) -> Pruned:
    """One pass over every app."""
    moment = time.time() if now is None else now
    async with sessionmaker() as session:
        apps = await windows(session, default_days)
    total = Pruned()
    for app_id, days in apps:
        before_ns = cutoff_ns(days, moment)
        total.add(
            await prune_app(sessionmaker, app_id, before_ns, batch_rows=batch_rows, pause=pause)
        )
        # The keys' usage counts of the same window go too (usage/rollup.py).
        before = datetime.fromtimestamp(before_ns / 1e9, UTC)
        total.usage += await usage_rollup.prune_app(sessionmaker, app_id, before)
    return total


async def run(sessionmaker: async_sessionmaker[AsyncSession], default_days: int) -> None:
    """Prune now and then for as long as the process serves."""
    await asyncio.sleep(FIRST_PASS_DELAY_SECONDS)
    while True:
        try:
            pruned = await prune(sessionmaker, default_days)
            if pruned.traces or pruned.spans:
                log.info(
                    "retention: deleted %d traces, %d spans, %d scores",
                    pruned.traces,
                    pruned.spans,
                    pruned.scores,
                )
        except Exception:
            # The database may be away for a while; the next pass picks up where this stopped.
            log.warning("retention pass failed; will retry", exc_info=True)
        await asyncio.sleep(PASS_INTERVAL_SECONDS)
