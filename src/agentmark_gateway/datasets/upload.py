"""Replacing a dataset with an uploaded ``.jsonl``, without a long write lock.

The new rows are written under a hidden dataset of their own, a batch per
transaction; one short transaction then gives it the name (and retires the old
dataset under a hidden name), and the old rows are deleted a batch at a time.
Readers see the old rows or the new ones, never a mix; on SQLite no transaction
holds the write lock for more than a batch, so other apps' writes go on between.
An upload that fails leaves nothing visible; what a crash leaves behind is swept
by the next upload to the app.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.datasets.models import HIDDEN_PREFIX, Dataset, DatasetRow
from agentmark_gateway.datasets.service import (
    BATCH_ROWS,
    WRITE_ATTEMPTS,
    busy,
    delete_in_batches,
    find_dataset,
    lock_dataset,
)
from agentmark_gateway.db.base import new_id, utcnow

# Hidden datasets untouched this long belong to an upload that died.
ABANDONED = timedelta(hours=1)


async def replace_rows(
    session: AsyncSession, *, app_id: str, name: str, lines: Sequence[bytes]
) -> tuple[Dataset, bool]:
    """The dataset becomes exactly ``lines`` (encoded rows, lines 1..n); True if created."""
    await _sweep_abandoned(session, app_id)
    staged = Dataset(app_id=app_id, name=f"{HIDDEN_PREFIX}upload/{new_id('up')}")
    session.add(staged)
    await session.commit()
    staged_id = staged.id
    try:
        for start in range(0, len(lines), BATCH_ROWS):
            now = utcnow()
            values = [
                {
                    "dataset_id": staged_id,
                    "line_number": n,
                    "data": json.loads(line),
                    "created_at": now,
                }
                for n, line in enumerate(lines[start : start + BATCH_ROWS], start=start + 1)
            ]
            await session.execute(insert(DatasetRow), values)
            await session.commit()
        created, retired = await _switch(session, app_id=app_id, name=name, staged=staged)
    except Exception:
        await session.rollback()
        await _delete_quietly(session, staged_id)
        raise
    await session.refresh(staged)
    if retired is not None:
        await delete_in_batches(session, retired)
    return staged, created


async def _switch(
    session: AsyncSession, *, app_id: str, name: str, staged: Dataset
) -> tuple[bool, str | None]:
    """In one transaction: the old dataset (if any) hidden, the staged one named ``name``."""
    for _ in range(WRITE_ATTEMPTS):
        try:
            old = await find_dataset(session, app_id=app_id, name=name)
            now = utcnow()
            if old is not None:
                await lock_dataset(session, old)
                old.name = f"{HIDDEN_PREFIX}replaced/{old.id}"
                await session.flush()  # frees the name before the staged dataset takes it
                staged.created_at = old.created_at
            else:
                staged.created_at = now
            staged.name, staged.updated_at = name, now
            await session.commit()
            return old is None, None if old is None else old.id
        except IntegrityError:
            # Another upload took the name first; retire it in turn.
            await session.rollback()
    raise busy(name)


async def _delete_quietly(session: AsyncSession, dataset_id: str) -> None:
    """Best effort after a failure: if the database is down, the sweep gets it later."""
    try:
        await delete_in_batches(session, dataset_id)
    except Exception:
        await session.rollback()


async def _sweep_abandoned(session: AsyncSession, app_id: str) -> None:
    stale = await session.scalars(
        select(Dataset.id).where(
            Dataset.app_id == app_id,
            Dataset.name.startswith(HIDDEN_PREFIX),
            Dataset.updated_at < utcnow() - ABANDONED,
        )
    )
    for dataset_id in list(stale):
        await delete_in_batches(session, dataset_id)
