"""Experiment runs: a prompt run over a dataset, recorded with each item's result.

A run is written once, in one transaction, and never changes; its summaries are
computed when read. Latency, cost and tokens come from the spans of each item's
trace (when the item names one and its spans have arrived), so they are never
reported twice in two places that could disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import NotFound
from agentmark_gateway.experiments.models import Experiment, ExperimentItem
from agentmark_gateway.experiments.schemas import (
    ExperimentCreate,
    ExperimentDetail,
    ExperimentSummary,
    ItemPublic,
    ItemScore,
    ScoreSummary,
)
from agentmark_gateway.scores.service import date_conditions
from agentmark_gateway.traces.models import Span

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class ExperimentFilters:
    experiment_key: str | None = None
    prompt_path: str | None = None
    dataset_path: str | None = None
    commit_sha: str | None = None
    tree_hash: str | None = None
    start_date: date | datetime | None = None
    end_date: date | datetime | None = None


@dataclass(frozen=True)
class TraceStats:
    duration_ns: int | None
    cost: float | None
    tokens: int | None
    model: str | None


def not_found(message: str = "Experiment not found") -> NotFound:
    return NotFound(message, code="experiment_not_found")


async def record_experiment(
    session: AsyncSession, *, app_id: str, run: ExperimentCreate
) -> ExperimentDetail:
    experiment = Experiment(
        app_id=app_id,
        name=run.name,
        experiment_key=run.experiment_key,
        dataset_path=run.dataset_path,
        prompt_path=run.prompt_path,
        commit_sha=run.commit_sha,
        tree_hash=run.tree_hash,
        metadata_=run.metadata,
        created_at=utcnow(),
    )
    session.add(experiment)
    await session.flush()
    session.add_all(
        ExperimentItem(
            experiment_id=experiment.id,
            position=position,
            input=item.input,
            expected_output=item.expected_output,
            output=item.output,
            trace_id=item.trace_id,
            scores=[score.model_dump() for score in item.scores],
            error=item.error,
        )
        for position, item in enumerate(run.items)
    )
    await session.commit()
    return await get_experiment(session, app_id=app_id, experiment_id=experiment.id)


def _conditions(app_id: str, filters: ExperimentFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Experiment.app_id == app_id]
    for column, value in (
        (Experiment.experiment_key, filters.experiment_key),
        (Experiment.prompt_path, filters.prompt_path),
        (Experiment.dataset_path, filters.dataset_path),
        (Experiment.commit_sha, filters.commit_sha),
        (Experiment.tree_hash, filters.tree_hash),
    ):
        if value is not None:
            conditions.append(column == value)
    conditions.extend(date_conditions(Experiment.created_at, filters.start_date, filters.end_date))
    return conditions


def _newest_first(query: Select[Any]) -> Select[Any]:
    return query.order_by(Experiment.created_at.desc(), Experiment.id.desc())


async def list_experiments(
    session: AsyncSession,
    *,
    app_id: str,
    filters: ExperimentFilters,
    limit: int,
    offset: int,
) -> tuple[list[ExperimentSummary], int]:
    conditions = _conditions(app_id, filters)
    total = await session.scalar(select(func.count()).select_from(Experiment).where(*conditions))
    experiments = list(
        await session.scalars(
            _newest_first(select(Experiment).where(*conditions)).limit(limit).offset(offset)
        )
    )
    ids = [e.id for e in experiments]
    items: dict[str, list[tuple[list[dict[str, Any]], bool]]] = {i: [] for i in ids}
    if ids:
        rows = await session.execute(
            select(ExperimentItem.experiment_id, ExperimentItem.scores, ExperimentItem.error)
            .where(ExperimentItem.experiment_id.in_(ids))
            .order_by(ExperimentItem.experiment_id, ExperimentItem.position)
        )
        for experiment_id, scores, error in rows:
            items[experiment_id].append((scores or [], error is not None))
    runs = await _run_stats(session, app_id=app_id, experiment_ids=ids)
    summaries = []
    for experiment in experiments:
        avg_ns, cost, tokens = runs.get(experiment.id, (None, None, None))
        summaries.append(
            _summary(
                experiment,
                scores=[s for s, _ in items[experiment.id]],
                item_count=len(items[experiment.id]),
                error_count=sum(failed for _, failed in items[experiment.id]),
                avg_latency_ms=None if avg_ns is None else avg_ns / NS_PER_MS,
                total_cost=cost or 0.0,
                total_tokens=tokens or 0,
            )
        )
    return summaries, total or 0


async def get_experiment(
    session: AsyncSession, *, app_id: str, experiment_id: str
) -> ExperimentDetail:
    experiment = await session.scalar(
        select(Experiment).where(Experiment.app_id == app_id, Experiment.id == experiment_id)
    )
    if experiment is None:
        raise not_found()
    return await _detail(session, experiment)


async def find_baseline(
    session: AsyncSession,
    *,
    app_id: str,
    experiment_key: str | None,
    prompt_path: str | None,
    dataset_path: str | None,
    tree_hash: str | None,
) -> ExperimentDetail:
    """The newest run matching every given key, made from other sources than ``tree_hash``.

    A run of the same tree is the run being compared (or a retry of it), never
    its baseline; runs that recorded no tree hash count as other sources.
    """
    filters = ExperimentFilters(
        experiment_key=experiment_key, prompt_path=prompt_path, dataset_path=dataset_path
    )
    conditions = _conditions(app_id, filters)
    if tree_hash is not None:
        conditions.append(or_(Experiment.tree_hash.is_(None), Experiment.tree_hash != tree_hash))
    experiment = await session.scalar(_newest_first(select(Experiment).where(*conditions)).limit(1))
    if experiment is None:
        raise not_found("No earlier run matches; this run has no baseline yet")
    return await _detail(session, experiment)


async def _detail(session: AsyncSession, experiment: Experiment) -> ExperimentDetail:
    items = list(
        await session.scalars(
            select(ExperimentItem)
            .where(ExperimentItem.experiment_id == experiment.id)
            .order_by(ExperimentItem.position)
        )
    )
    traces = await _trace_stats(
        session,
        app_id=experiment.app_id,
        trace_ids=select(ExperimentItem.trace_id).where(
            ExperimentItem.experiment_id == experiment.id
        ),
    )
    public = [_item(item, traces.get(item.trace_id or "")) for item in items]
    latencies = [i.latency_ms for i in public if i.latency_ms is not None]
    summary = _summary(
        experiment,
        scores=[item.scores for item in items],
        item_count=len(items),
        error_count=sum(item.error is not None for item in items),
        avg_latency_ms=sum(latencies) / len(latencies) if latencies else None,
        total_cost=sum(i.cost or 0.0 for i in public),
        total_tokens=sum(i.tokens or 0 for i in public),
    )
    return ExperimentDetail(**summary.model_dump(), items=public)


def _item(item: ExperimentItem, trace: TraceStats | None) -> ItemPublic:
    return ItemPublic(
        position=item.position,
        trace_id=item.trace_id,
        input=item.input,
        expected_output=item.expected_output,
        output=item.output,
        scores=[ItemScore.model_validate(score) for score in item.scores or []],
        error=item.error,
        latency_ms=None
        if trace is None or trace.duration_ns is None
        else trace.duration_ns / NS_PER_MS,
        cost=None if trace is None else trace.cost,
        tokens=None if trace is None else trace.tokens,
        model=None if trace is None else trace.model,
    )


def _summary(
    experiment: Experiment,
    *,
    scores: Iterable[Sequence[dict[str, Any]]],
    item_count: int,
    error_count: int,
    avg_latency_ms: float | None,
    total_cost: float,
    total_tokens: int,
) -> ExperimentSummary:
    per_name: dict[str, list[float]] = {}
    for item_scores in scores:
        for score in item_scores:
            per_name.setdefault(score["name"], []).append(float(score["score"]))
    every = [value for values in per_name.values() for value in values]
    return ExperimentSummary(
        id=experiment.id,
        name=experiment.name,
        experiment_key=experiment.experiment_key,
        dataset_path=experiment.dataset_path,
        prompt_path=experiment.prompt_path,
        prompt_name=experiment.prompt_path,
        commit_sha=experiment.commit_sha,
        tree_hash=experiment.tree_hash,
        metadata=experiment.metadata_,
        created_at=experiment.created_at,
        item_count=item_count,
        error_count=error_count,
        avg_score=sum(every) / len(every) if every else None,
        score_summaries=[
            ScoreSummary(
                name=name,
                count=len(values),
                avg_score=sum(values) / len(values),
                min_score=min(values),
                max_score=max(values),
            )
            for name, values in sorted(per_name.items())
        ],
        avg_latency_ms=avg_latency_ms,
        total_cost=total_cost,
        total_tokens=total_tokens,
    )


def _trace_query(app_id: str, trace_ids: Select[Any]) -> Select[*tuple[Any, ...]]:
    """One row per trace of ``trace_ids`` in the app: duration, cost, tokens, a model."""
    return (
        select(
            Span.trace_id.label("trace_id"),
            (func.max(Span.end_time_ns) - func.min(Span.start_time_ns)).label("duration_ns"),
            func.sum(Span.cost).label("cost"),
            func.sum(Span.input_tokens + Span.output_tokens).label("tokens"),
            func.max(Span.model).label("model"),
        )
        .where(Span.app_id == app_id, Span.trace_id.in_(trace_ids))
        .group_by(Span.trace_id)
    )


async def _trace_stats(
    session: AsyncSession, *, app_id: str, trace_ids: Select[Any]
) -> dict[str, TraceStats]:
    rows = await session.execute(_trace_query(app_id, trace_ids))
    return {
        trace_id: TraceStats(
            duration_ns=None if duration is None else int(duration),
            cost=None if cost is None else float(cost),
            tokens=None if tokens is None else int(tokens),
            model=model,
        )
        for trace_id, duration, cost, tokens, model in rows
    }


async def _run_stats(
    session: AsyncSession, *, app_id: str, experiment_ids: list[str]
) -> dict[str, tuple[float | None, float | None, int | None]]:
    """Per run of ``experiment_ids``: mean trace duration (ns), total cost, total tokens."""
    if not experiment_ids:
        return {}
    traces = _trace_query(
        app_id,
        select(ExperimentItem.trace_id).where(ExperimentItem.experiment_id.in_(experiment_ids)),
    ).subquery()
    rows = await session.execute(
        select(
            ExperimentItem.experiment_id,
            func.avg(traces.c.duration_ns),
            func.sum(traces.c.cost),
            func.sum(traces.c.tokens),
        )
        .join(traces, traces.c.trace_id == ExperimentItem.trace_id)
        .where(ExperimentItem.experiment_id.in_(experiment_ids))
        .group_by(ExperimentItem.experiment_id)
    )
    return {
        experiment_id: (
            None if avg is None else float(avg),
            None if cost is None else float(cost),
            None if tokens is None else int(tokens),
        )
        for experiment_id, avg, cost, tokens in rows
    }
