"""Datasets: named lists of rows per app, readable as ``.jsonl`` through /v1/templates.

Line numbers are 1-based and dense: row N is line N of the file that
``GET /v1/templates?path=NAME.jsonl`` serves. Writers of one dataset are
serialized by ``lock_dataset`` (a row lock on PostgreSQL, the write lock on SQLite);
the unique (dataset, line) constraint is the backstop, and a writer that still
loses a race retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.datasets.jsonl import too_many_rows
from agentmark_gateway.datasets.mapping import RowMapping, row_from_span
from agentmark_gateway.datasets.models import HIDDEN_PREFIX, Dataset, DatasetRow
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import Conflict, NotFound
from agentmark_gateway.jsonvalues import check_storable
from agentmark_gateway.pagination import bounded_count
from agentmark_gateway.traces.models import Span

WRITE_ATTEMPTS = 5
STREAM_BATCH = 500
# Rows written or deleted per transaction by uploads and deletes: a few milliseconds
# of SQLite's write lock, so other writers (other apps' ingest) go on between batches.
BATCH_ROWS = 1000


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    row_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ImportResult:
    source_id: str
    line_number: int | None = None
    error: str | None = None


def not_found(name: str) -> NotFound:
    return NotFound(f"Dataset '{name}' not found", code="dataset_not_found")


# -- reading ------------------------------------------------------------------


async def get_dataset(session: AsyncSession, *, app_id: str, name: str) -> Dataset:
    dataset = await find_dataset(session, app_id=app_id, name=name)
    if dataset is None:
        raise not_found(name)
    return dataset


async def list_datasets(
    session: AsyncSession, *, app_id: str, leaf: str | None = None, limit: int, offset: int
) -> tuple[list[DatasetSummary], int]:
    """The app's datasets by name; ``leaf`` keeps those whose last path segment equals it."""
    where = [Dataset.app_id == app_id, ~Dataset.name.startswith(HIDDEN_PREFIX)]
    if leaf is not None:
        where.append(or_(Dataset.name == leaf, Dataset.name.endswith(f"/{leaf}", autoescape=True)))
    total = await session.scalar(select(func.count()).select_from(Dataset).where(*where)) or 0
    row_count = (
        select(func.count())
        .where(DatasetRow.dataset_id == Dataset.id)
        .correlate(Dataset)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Dataset.name, row_count, Dataset.created_at, Dataset.updated_at)
        .where(*where)
        .order_by(Dataset.name)
        .limit(limit)
        .offset(offset)
    )
    return [DatasetSummary(*row) for row in rows], total


async def list_rows(
    session: AsyncSession, *, app_id: str, name: str, limit: int, offset: int
) -> tuple[list[DatasetRow], int]:
    dataset = await get_dataset(session, app_id=app_id, name=name)
    rows_of_dataset = select(DatasetRow.id).where(DatasetRow.dataset_id == dataset.id)
    total = await session.scalar(bounded_count(rows_of_dataset, offset)) or 0
    rows = await session.scalars(
        select(DatasetRow)
        .where(DatasetRow.dataset_id == dataset.id)
        .order_by(DatasetRow.line_number)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def _rows_of(app_id: str, name: str) -> Any:
    # Joined to the dataset so that the app filter is part of the one query.
    return (
        select(DatasetRow.data)
        .join(Dataset, Dataset.id == DatasetRow.dataset_id)
        .where(Dataset.app_id == app_id, Dataset.name == name)
        .order_by(DatasetRow.line_number)
    )


async def all_rows(session: AsyncSession, *, app_id: str, name: str) -> list[dict[str, Any]]:
    await get_dataset(session, app_id=app_id, name=name)
    return list(await session.scalars(_rows_of(app_id, name)))


async def stream_rows(
    session: AsyncSession, *, app_id: str, name: str
) -> AsyncIterator[list[dict[str, Any]]]:
    """The rows in line order, in batches, from one query (one consistent snapshot)."""
    result = await session.stream_scalars(
        _rows_of(app_id, name).execution_options(yield_per=STREAM_BATCH)
    )
    async for batch in result.partitions(STREAM_BATCH):
        yield list(batch)


# -- writing ------------------------------------------------------------------


async def append_rows(
    session: AsyncSession,
    *,
    app_id: str,
    name: str,
    rows: list[dict[str, Any]],
    max_rows: int | None = None,
) -> list[int]:
    """Appends ``rows`` in one transaction, creating the dataset if needed; their line numbers.

    413 when the dataset would hold more than ``max_rows`` rows.
    """
    for _ in range(WRITE_ATTEMPTS):
        try:
            dataset, _created = await _get_or_create(session, app_id=app_id, name=name)
            await lock_dataset(session, dataset)
            last = await session.scalar(
                select(func.max(DatasetRow.line_number)).where(DatasetRow.dataset_id == dataset.id)
            )
            # Line numbers are dense, so the last one is the row count.
            if max_rows is not None and (last or 0) + len(rows) > max_rows:
                await session.rollback()
                raise too_many_rows(max_rows)
            first = (last or 0) + 1
            numbers = list(range(first, first + len(rows)))
            await _insert(session, dataset, zip(numbers, rows, strict=True))
            await session.commit()
            return numbers
        except IntegrityError:
            # A concurrent writer created the dataset or took these line numbers.
            await session.rollback()
    raise busy(name)


async def delete_dataset(session: AsyncSession, *, app_id: str, name: str) -> None:
    dataset = await get_dataset(session, app_id=app_id, name=name)
    # Gone for readers at once (one short transaction); its rows then go a batch at a time.
    dataset.name = f"{HIDDEN_PREFIX}deleted/{dataset.id}"
    await session.commit()
    await delete_in_batches(session, dataset.id)


async def delete_in_batches(session: AsyncSession, dataset_id: str) -> None:
    """Deletes a hidden dataset's rows, a batch per transaction, then the dataset."""
    while True:
        batch = select(DatasetRow.id).where(DatasetRow.dataset_id == dataset_id).limit(BATCH_ROWS)
        result = await session.execute(
            delete(DatasetRow).where(DatasetRow.id.in_(batch.scalar_subquery()))
        )
        await session.commit()
        if not cast("CursorResult[Any]", result).rowcount:
            break
    await session.execute(delete(Dataset).where(Dataset.id == dataset_id))
    await session.commit()


async def find_dataset(session: AsyncSession, *, app_id: str, name: str) -> Dataset | None:
    dataset: Dataset | None = await session.scalar(
        select(Dataset).where(Dataset.app_id == app_id, Dataset.name == name)
    )
    return dataset


async def _get_or_create(session: AsyncSession, *, app_id: str, name: str) -> tuple[Dataset, bool]:
    dataset = await find_dataset(session, app_id=app_id, name=name)
    if dataset is not None:
        return dataset, False
    dataset = Dataset(app_id=app_id, name=name)
    session.add(dataset)
    await session.flush()  # IntegrityError when another request created it first
    return dataset, True


async def lock_dataset(session: AsyncSession, dataset: Dataset) -> None:
    """Serialize writers of this dataset until commit (and mark it changed)."""
    now = utcnow()
    await session.execute(update(Dataset).where(Dataset.id == dataset.id).values(updated_at=now))
    dataset.updated_at = now


async def _insert(
    session: AsyncSession, dataset: Dataset, numbered: Iterable[tuple[int, dict[str, Any]]]
) -> None:
    now = utcnow()
    values = [
        {"dataset_id": dataset.id, "line_number": n, "data": row, "created_at": now}
        for n, row in numbered
    ]
    if values:
        await session.execute(insert(DatasetRow), values)


def busy(name: str) -> Conflict:
    return Conflict(f"Dataset '{name}' is busy; try again", code="dataset_busy")


# -- imports ------------------------------------------------------------------


async def import_from_traces(
    session: AsyncSession,
    *,
    app_id: str,
    name: str,
    trace_ids: list[str],
    mapping: RowMapping | None,
    max_rows: int | None = None,
) -> list[ImportResult]:
    """One row per trace, from its root span (the earliest span without a parent)."""
    spans: dict[str, Span | str | None] = {
        tid: await _root_span(session, app_id=app_id, trace_id=tid) for tid in _unique(trace_ids)
    }
    return await _import(
        session,
        app_id=app_id,
        name=name,
        spans=spans,
        what="trace",
        mapping=mapping,
        max_rows=max_rows,
    )


async def import_from_spans(
    session: AsyncSession,
    *,
    app_id: str,
    name: str,
    span_ids: list[str],
    mapping: RowMapping | None,
    max_rows: int | None = None,
) -> list[ImportResult]:
    """One row per span. A span id names a span of the app (ids are random 64-bit values)."""
    found: dict[str, list[Span]] = {sid: [] for sid in _unique(span_ids)}
    matches = await session.scalars(
        select(Span).where(Span.app_id == app_id, Span.span_id.in_(list(found)))
    )
    for span in matches:
        found[span.span_id].append(span)
    spans: dict[str, Span | str | None] = {}
    for sid, candidates in found.items():
        if len(candidates) > 1:
            spans[sid] = f"span id '{sid}' matches spans of several traces"
        else:
            spans[sid] = candidates[0] if candidates else None
    return await _import(
        session,
        app_id=app_id,
        name=name,
        spans=spans,
        what="span",
        mapping=mapping,
        max_rows=max_rows,
    )


def _unique(ids: list[str]) -> list[str]:
    """Ids as stored (lowercase hex), each once, in the order given."""
    return list(dict.fromkeys(i.strip().lower() for i in ids))


async def _root_span(session: AsyncSession, *, app_id: str, trace_id: str) -> Span | None:
    in_trace = select(Span).where(Span.app_id == app_id, Span.trace_id == trace_id)
    root = await session.scalar(
        in_trace.where(or_(Span.parent_span_id.is_(None), Span.parent_span_id == ""))
        .order_by(Span.start_time_ns, Span.id)
        .limit(1)
    )
    if root is None:  # the root was never received: take the earliest span we have
        root = await session.scalar(in_trace.order_by(Span.start_time_ns, Span.id).limit(1))
    return root


async def _import(
    session: AsyncSession,
    *,
    app_id: str,
    name: str,
    spans: dict[str, Span | str | None],
    what: str,
    mapping: RowMapping | None,
    max_rows: int | None,
) -> list[ImportResult]:
    """``spans`` maps each id to its span, to None (not found) or to why it cannot be used."""
    results: dict[str, ImportResult] = {}
    rows: list[tuple[str, dict[str, Any]]] = []
    for source_id, span in spans.items():
        if span is None:
            results[source_id] = ImportResult(source_id, error=f"{what} '{source_id}' not found")
        elif isinstance(span, str):
            results[source_id] = ImportResult(source_id, error=span)
        else:
            try:
                rows.append((source_id, check_storable(row_from_span(span, mapping))))
            except ValueError as exc:  # a MappingError, or a value no database could store
                results[source_id] = ImportResult(source_id, error=str(exc))
    if rows:
        numbers = await append_rows(
            session, app_id=app_id, name=name, rows=[r for _, r in rows], max_rows=max_rows
        )
        for (source_id, _), number in zip(rows, numbers, strict=True):
            results[source_id] = ImportResult(source_id, line_number=number)
    return [results[source_id] for source_id in spans]
