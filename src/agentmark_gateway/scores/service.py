"""Scores: numbers (with optional label and reason) attached to a trace or span.

Every query is filtered by the caller's app; a score of another app does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.db.group_commit import GroupCommit
from agentmark_gateway.errors import NotFound
from agentmark_gateway.pagination import bounded_count
from agentmark_gateway.scores.models import Score, new_score_id
from agentmark_gateway.scores.schemas import (
    ScoreAggregation,
    ScoreCreate,
    ScoreCreated,
    ScorePublic,
)

SCORES = cast(Table, Score.__table__)


@dataclass(frozen=True)
class ScoreFilters:
    resource_id: str | None = None
    name: str | None = None
    source: str | None = None
    start_date: date | datetime | None = None
    end_date: date | datetime | None = None


def not_found() -> NotFound:
    return NotFound("Score not found", code="score_not_found")


def to_public(score: Score) -> ScorePublic:
    return ScorePublic(
        id=score.id,
        resource_id=score.resource_id,
        name=score.name,
        score=score.score,
        label=score.label,
        reason=score.reason,
        type=score.type,
        source=score.source,
        metadata=score.metadata_,
        created_at=score.created_at,
    )


def _new_row(app_id: str, score: ScoreCreate) -> dict[str, Any]:
    """The stored columns of a new score, by column name.

    Plain values, not a ``Score`` object: the writer inserts them as they are,
    and building a mapped object costs more than the insert. Ids and times are
    set here, not at insert, so the answer can report them.
    """
    return {
        "id": new_score_id(),
        "app_id": app_id,
        "resource_id": score.resource_id,
        "name": score.name,
        "score": score.score,
        "label": score.label,
        "reason": score.reason,
        "type": score.type,
        "source": score.source,
        "metadata": score.metadata,
        "created_at": utcnow(),
    }


def created(row: dict[str, Any]) -> ScoreCreated:
    """The answer for a score ``write_scores`` stored."""
    return ScoreCreated(**{name: value for name, value in row.items() if name != "app_id"})


async def write_scores(
    writes: GroupCommit, *, app_id: str, scores: Sequence[ScoreCreate]
) -> list[dict[str, Any]]:
    """Stores all of ``scores`` through the process's writer, in one transaction
    (which may hold other requests' rows); returns their rows once it has committed."""
    rows = [_new_row(app_id, score) for score in scores]
    if rows:
        await writes.write(write_score_batches, rows, len(rows))
    return rows


async def write_score_batches(
    session: AsyncSession, batches: Sequence[list[dict[str, Any]]]
) -> None:
    """Inserts the scores of several requests in one statement; does not commit."""
    await session.execute(insert(SCORES), [row for batch in batches for row in batch])


def _as_moment(value: date | datetime, *, end: bool) -> tuple[datetime, bool]:
    """A filter bound as a UTC datetime, and whether it is exclusive.

    A bare date means the whole day: from its midnight, up to the next one.
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment, False
    midnight = datetime.combine(value, time(), tzinfo=UTC)
    if not end:
        return midnight, False
    if value == date.max:  # there is no next midnight; the whole day is the rest of time
        return datetime.max.replace(tzinfo=UTC), False
    return midnight + timedelta(days=1), True


def date_conditions(
    column: Any, start: date | datetime | None, end: date | datetime | None
) -> list[ColumnElement[bool]]:
    """``created_at`` between two optional bounds (shared with experiments)."""
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        moment, _ = _as_moment(start, end=False)
        conditions.append(column >= moment)
    if end is not None:
        moment, exclusive = _as_moment(end, end=True)
        conditions.append(column < moment if exclusive else column <= moment)
    return conditions


def _conditions(app_id: str, filters: ScoreFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Score.app_id == app_id]
    if filters.resource_id is not None:
        conditions.append(Score.resource_id == filters.resource_id)
    if filters.name is not None:
        conditions.append(Score.name == filters.name)
    if filters.source is not None:
        conditions.append(Score.source == filters.source)
    conditions.extend(date_conditions(Score.created_at, filters.start_date, filters.end_date))
    return conditions


async def list_scores(
    session: AsyncSession, *, app_id: str, filters: ScoreFilters, limit: int, offset: int
) -> tuple[list[Score], int]:
    conditions = _conditions(app_id, filters)
    total = await session.scalar(bounded_count(select(Score.id).where(*conditions), offset))
    query = (
        select(Score)
        .where(*conditions)
        .order_by(Score.created_at.desc(), Score.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query)), total or 0


async def get_score(session: AsyncSession, *, app_id: str, score_id: str) -> Score:
    score = await session.scalar(select(Score).where(Score.app_id == app_id, Score.id == score_id))
    if score is None:
        raise not_found()
    return score


async def delete_score(session: AsyncSession, *, app_id: str, score_id: str) -> None:
    score = await get_score(session, app_id=app_id, score_id=score_id)
    await session.delete(score)
    await session.commit()


async def score_names(session: AsyncSession, *, app_id: str) -> list[str]:
    rows = await session.scalars(
        select(Score.name).where(Score.app_id == app_id).distinct().order_by(Score.name)
    )
    return list(rows)


async def aggregate_scores(
    session: AsyncSession, *, app_id: str, filters: ScoreFilters
) -> list[ScoreAggregation]:
    """Per name: count, mean, min, max, and how often each label was given."""
    conditions = _conditions(app_id, filters)
    stats = await session.execute(
        select(
            Score.name,
            func.count(),
            func.avg(Score.score),
            func.min(Score.score),
            func.max(Score.score),
        )
        .where(*conditions)
        .group_by(Score.name)
        .order_by(Score.name)
    )
    labels: dict[str, dict[str, int]] = {}
    label_counts = await session.execute(
        select(Score.name, Score.label, func.count())
        .where(*conditions, Score.label.is_not(None))
        .group_by(Score.name, Score.label)
        .order_by(Score.name, Score.label)
    )
    for name, label, count in label_counts:
        labels.setdefault(name, {})[str(label)] = count
    return [
        ScoreAggregation(
            name=name,
            count=count,
            avg_score=float(mean),
            min_score=float(low),
            max_score=float(high),
            labels=labels.get(name, {}),
        )
        for name, count, mean, low, high in stats
    ]
