"""Usage kept for as long as it is useful: minute rows 48 hours, hour rows 90 days.

Once an hour each process folds minute rows older than 48 hours into hour rows
and deletes hour rows older than 90 days, a few thousand rows per transaction
so the write lock is never held long. Two processes doing it at once cannot
count a minute twice: the fold deletes the rows it read in the same
transaction, and a row another process already deleted makes the delete count
fall short, which rolls that batch back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.usage.models import HOUR, MINUTE, KeyUsage
from agentmark_gateway.usage.totals import Totals

log = logging.getLogger(__name__)

MINUTES_KEPT = timedelta(hours=48)
HOURS_KEPT = timedelta(days=90)
BATCH = 2_000
EVERY_SECONDS = 3600.0
FIRST_AFTER_SECONDS = 60.0


class _Raced(Exception):
    """Another process folded some of these rows first."""


async def roll_up(
    sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None
) -> int:
    """Fold old minute rows into hour rows and prune old hour rows; returns rows removed."""
    now = now or utcnow()
    removed = 0
    while True:
        try:
            async with sessionmaker() as session, session.begin():
                done = await _fold_batch(session, before=now - MINUTES_KEPT)
        except _Raced:
            continue
        if not done:
            break
        removed += done
    while True:
        async with sessionmaker() as session, session.begin():
            ids = select(KeyUsage.id).where(
                KeyUsage.granularity == HOUR, KeyUsage.bucket_start < now - HOURS_KEPT
            )
            result = await session.execute(
                delete(KeyUsage).where(KeyUsage.id.in_(ids.limit(BATCH).scalar_subquery()))
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            break
        removed += result.rowcount  # type: ignore[attr-defined]
    return removed


async def prune_app(
    sessionmaker: async_sessionmaker[AsyncSession], app_id: str, before: datetime
) -> int:
    """Delete an app's counts of buckets that started before ``before`` (its retention
    window, retention.py), a batch per transaction; returns rows deleted."""
    removed = 0
    while True:
        async with sessionmaker() as session, session.begin():
            ids = select(KeyUsage.id).where(
                KeyUsage.app_id == app_id, KeyUsage.bucket_start < before
            )
            result = await session.execute(
                delete(KeyUsage).where(KeyUsage.id.in_(ids.limit(BATCH).scalar_subquery()))
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            return removed
        removed += result.rowcount  # type: ignore[attr-defined]


async def _fold_batch(session: AsyncSession, *, before: datetime) -> int:
    rows = (
        await session.scalars(
            select(KeyUsage)
            .where(KeyUsage.granularity == MINUTE, KeyUsage.bucket_start < before)
            .order_by(KeyUsage.id)
            .limit(BATCH)
        )
    ).all()
    if not rows:
        return 0
    hours: dict[tuple[str, str, datetime], Totals] = {}
    for row in rows:
        hour = row.bucket_start.replace(minute=0, second=0, microsecond=0)
        hours.setdefault((row.app_id, row.key_id, hour), Totals()).add(row)
    ids = [row.id for row in rows]
    result = await session.execute(delete(KeyUsage).where(KeyUsage.id.in_(ids)))
    if result.rowcount != len(ids):  # type: ignore[attr-defined]
        raise _Raced
    session.add_all(
        KeyUsage(app_id=app_id, key_id=key_id, granularity=HOUR, bucket_start=hour, **t.fields())
        for (app_id, key_id, hour), t in hours.items()
    )
    return len(rows)


async def run(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Roll up forever (a background task of each server process)."""
    await asyncio.sleep(FIRST_AFTER_SECONDS)
    while True:
        try:
            await roll_up(sessionmaker)
        except Exception:  # a busy or absent database: next time
            log.info("could not roll up usage counts", exc_info=True)
        await asyncio.sleep(EVERY_SECONDS)
