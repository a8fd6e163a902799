"""Experiment runs, derived from what the clients record (never stored on their own).

A run is every trace whose root span carries the same ``agentmark.dataset_run_id``:
one trace per dataset row, with the run's other marks (name, dataset path,
experiment key, tree hash, commit) on that root span and the row's scores on
its trace id. Ingest rolls those marks up per trace (traces/ingest.py), so a
run is a ``GROUP BY`` over the app's traces, and a row's details come from its
row span (see ``_row_spans``), its model calls and its scores. The keys each
mark is read from are traces/derive.py's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.errors import NotFound
from agentmark_gateway.experiments.row_hash import NotJson, hash_row_input, parse_json
from agentmark_gateway.experiments.schemas import (
    Baseline,
    BaselineRow,
    BaselineRun,
    ExperimentDetail,
    ExperimentItem,
    ExperimentSummary,
    ItemScore,
    ScorerSummary,
)
from agentmark_gateway.pagination import bounded_count
from agentmark_gateway.scores.models import Score
from agentmark_gateway.scores.service import date_conditions
from agentmark_gateway.traces.derive import (
    DATASET_EXPECTED_OUTPUT_KEYS,
    DATASET_INPUT_KEYS,
    DATASET_ITEM_NAME_KEYS,
    OUTPUT_OBJECT_KEYS,
    PROPS_KEYS,
    first,
    text_of,
)
from agentmark_gateway.traces.models import Span, Trace

NS_PER_MS = 1_000_000
ERROR = 2  # OTLP status code


@dataclass(frozen=True)
class ExperimentFilters:
    """Exact matches on the summary's fields, and its createdAt between two bounds."""

    name: str | None = None
    prompt_name: str | None = None
    dataset_path: str | None = None
    start_date: date | datetime | None = None
    end_date: date | datetime | None = None


def experiment_not_found() -> NotFound:
    return NotFound("Experiment not found")


def _runs(app_id: str) -> Subquery:
    """One row per run of the app, with its aggregates over its rows' traces."""
    return (
        select(
            Trace.dataset_run_id.label("id"),
            func.max(Trace.dataset_run_name).label("name"),
            func.coalesce(func.max(Trace.prompt_name), "").label("prompt_name"),
            func.coalesce(func.max(Trace.dataset_path), "").label("dataset_path"),
            func.count().label("item_count"),
            func.avg(Trace.end_time_ns - Trace.start_time_ns).label("avg_latency_ns"),
            func.sum(Trace.cost).label("total_cost"),
            func.sum(Trace.input_tokens + Trace.output_tokens).label("total_tokens"),
            func.sum(case((Trace.status_code == ERROR, 1), else_=0)).label("error_count"),
            func.max(Trace.experiment_key).label("experiment_key"),
            func.max(Trace.tree_hash).label("tree_hash"),
            func.coalesce(func.max(Trace.commit_sha), "").label("commit_sha"),
            func.min(Trace.received_at).label("created_at"),
        )
        .where(Trace.app_id == app_id, Trace.dataset_run_id.is_not(None))
        .group_by(Trace.dataset_run_id)
        .subquery("runs")
    )


async def list_experiments(
    session: AsyncSession, *, app_id: str, filters: ExperimentFilters, limit: int, offset: int
) -> tuple[list[ExperimentSummary], int]:
    runs = _runs(app_id)
    conditions: list[ColumnElement[bool]] = []
    if filters.name is not None:  # the summary's name: the run's id when it has none
        conditions.append(func.coalesce(runs.c.name, runs.c.id) == filters.name)
    if filters.prompt_name is not None:
        conditions.append(runs.c.prompt_name == filters.prompt_name)
    if filters.dataset_path is not None:
        conditions.append(runs.c.dataset_path == filters.dataset_path)
    conditions.extend(date_conditions(runs.c.created_at, filters.start_date, filters.end_date))
    total = await session.scalar(bounded_count(select(runs.c.id).where(*conditions), offset))
    rows = (
        await session.execute(
            select(runs)
            .where(*conditions)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    scorers = await _scorers(session, app_id, [row.id for row in rows])
    return [_summary(row, scorers.get(row.id, [])) for row in rows], int(total or 0)


async def get_experiment(
    session: AsyncSession, *, app_id: str, experiment_id: str
) -> ExperimentDetail:
    summary = await get_run(session, app_id=app_id, run_id=experiment_id)
    rows = await run_rows(session, app_id=app_id, run_id=experiment_id)
    return ExperimentDetail(**summary.model_dump(), items=[row.item for row in rows])


async def get_run(session: AsyncSession, *, app_id: str, run_id: str) -> ExperimentSummary:
    """A run's summary without its rows; not found when the app has no such run."""
    runs = _runs(app_id)
    row = (await session.execute(select(runs).where(runs.c.id == run_id))).first()
    if row is None:
        raise experiment_not_found()
    scorers = await _scorers(session, app_id, [run_id])
    return _summary(row, scorers.get(run_id, []))


async def run_exists(session: AsyncSession, *, app_id: str, run_id: str) -> bool:
    found = await session.scalar(
        select(literal(1)).where(Trace.app_id == app_id, Trace.dataset_run_id == run_id).limit(1)
    )
    return found is not None


def _summary(row: Any, scorers: list[ScorerSummary]) -> ExperimentSummary:
    count = sum(s.count for s in scorers)
    return ExperimentSummary(
        id=row.id,
        name=row.name or row.id,
        prompt_name=row.prompt_name,
        dataset_path=row.dataset_path,
        item_count=int(row.item_count),
        avg_latency_ms=round(float(row.avg_latency_ns or 0) / NS_PER_MS, 3),
        total_cost=float(row.total_cost or 0.0),
        total_tokens=int(row.total_tokens or 0),
        avg_score=sum(s.avg_score * s.count for s in scorers) / count if count else None,
        error_count=int(row.error_count or 0),
        scorers=scorers,
        experiment_key=row.experiment_key,
        tree_hash=row.tree_hash,
        created_at=row.created_at,
        commit_sha=row.commit_sha,
    )


def _run_trace_ids(app_id: str, run_ids: list[str]) -> Any:
    return select(Trace.trace_id).where(Trace.app_id == app_id, Trace.dataset_run_id.in_(run_ids))


async def _scorers(
    session: AsyncSession, app_id: str, run_ids: list[str]
) -> dict[str, list[ScorerSummary]]:
    """Per run, each score name's count, mean, min and max over the run's rows."""
    if not run_ids:
        return {}
    rows = await session.execute(
        select(
            Trace.dataset_run_id,
            Score.name,
            func.count(),
            func.avg(Score.score),
            func.min(Score.score),
            func.max(Score.score),
        )
        .join(Trace, (Trace.app_id == Score.app_id) & (Trace.trace_id == Score.resource_id))
        .where(Score.app_id == app_id, Trace.dataset_run_id.in_(run_ids))
        .group_by(Trace.dataset_run_id, Score.name)
        .order_by(Trace.dataset_run_id, Score.name)
    )
    found: dict[str, list[ScorerSummary]] = defaultdict(list)
    for run_id, name, count, avg, low, high in rows:
        found[run_id].append(
            ScorerSummary(
                name=name,
                count=int(count),
                avg_score=float(avg),
                min_score=float(low),
                max_score=float(high),
            )
        )
    return found


async def _item_scores(
    session: AsyncSession, app_id: str, trace_ids: Any
) -> dict[str, list[Score]]:
    scores: dict[str, list[Score]] = defaultdict(list)
    for score in await session.scalars(
        select(Score)
        .where(Score.app_id == app_id, Score.resource_id.in_(trace_ids))
        .order_by(Score.created_at, Score.id)
    ):
        scores[score.resource_id].append(score)
    return scores


async def _row_spans(session: AsyncSession, app_id: str, run_id: str, trace_ids: Any) -> list[Span]:
    """The run's rows, one span a trace, in the order they ran: the trace's root span
    marked with the run, else its earliest span marked with it. The old AI SDK adapter
    marked the AI SDK's own spans, whose parent may be a span of another trace (the
    adapter gave them a trace id of their own), so such a trace may have no root."""
    rows: dict[str, Span] = {}
    for span in await session.scalars(
        select(Span)
        .where(
            Span.app_id == app_id,
            Span.trace_id.in_(trace_ids),
            Span.dataset_run_id == run_id,
        )
        .order_by(case((Span.parent_span_id.is_(None), 0), else_=1), Span.start_time_ns, Span.id)
    ):
        rows.setdefault(span.trace_id, span)
    return sorted(rows.values(), key=lambda span: (span.start_time_ns, span.trace_id))


@dataclass(frozen=True)
class RunRow:
    """A row of a run, and the key the regression gate joins it to a baseline's by."""

    item: ExperimentItem
    input_hash: str | None  # None: its input is empty or not JSON, so it matches nothing


async def run_rows(
    session: AsyncSession, *, app_id: str, run_id: str, limit: int | None = None, offset: int = 0
) -> list[RunRow]:
    """The run's rows in the order they ran; with ``limit``, one page of them, paged by
    their traces' start so that a page reads only its own rows' spans and scores."""
    run_traces = select(Trace).where(Trace.app_id == app_id, Trace.dataset_run_id == run_id)
    if limit is not None:
        run_traces = (
            run_traces.order_by(Trace.start_time_ns, Trace.trace_id).limit(limit).offset(offset)
        )
    traces = {trace.trace_id: trace for trace in await session.scalars(run_traces)}
    trace_ids: Any = list(traces) if limit is not None else _run_trace_ids(app_id, [run_id])
    roots = await _row_spans(session, app_id, run_id, trace_ids)
    # Model calls give a row's output; failed spans its error.
    others: dict[str, list[Span]] = defaultdict(list)
    for span in await session.scalars(
        select(Span)
        .where(
            Span.app_id == app_id,
            Span.trace_id.in_(trace_ids),
            Span.parent_span_id.is_not(None),
            or_(Span.model.is_not(None), Span.status_code == ERROR),
        )
        .order_by(Span.start_time_ns, Span.id)
    ):
        others[span.trace_id].append(span)
    scores = await _item_scores(session, app_id, trace_ids)
    return [
        RunRow(
            item=_item(
                root,
                traces[root.trace_id],
                others.get(root.trace_id, []),
                scores.get(root.trace_id, []),
            ),
            input_hash=_input_hash(root),
        )
        for root in roots
        if root.trace_id in traces
    ]


def _item(root: Span, trace: Trace, others: list[Span], scores: list[Score]) -> ExperimentItem:
    attributes = root.attributes or {}
    generations = [span for span in others if span.model is not None]
    generation = generations[0] if generations else None
    failed = [span for span in (root, *others) if span.status_code == ERROR]
    return ExperimentItem(
        trace_id=root.trace_id,
        # The old adapter's item name is its index, a number: shown as its decimal text.
        item_name=text_of(first(attributes, DATASET_ITEM_NAME_KEYS)) or root.name or "Item",
        input=text_of(first(attributes, (*DATASET_INPUT_KEYS, *PROPS_KEYS)))
        or root.input
        or (generation.input if generation else None)
        or "",
        expected_output=text_of(first(attributes, DATASET_EXPECTED_OUTPUT_KEYS)) or "",
        output=_output(root, generation),
        latency_ms=(root.end_time_ns - root.start_time_ns) / NS_PER_MS,
        cost=float(trace.cost or 0.0),
        tokens=int(trace.input_tokens) + int(trace.output_tokens),
        model=trace.model or "",
        scores=[
            ItemScore(name=s.name, score=s.score, label=s.label or "", reason=s.reason or "")
            for s in scores
        ],
        error=(failed[0].status_message or "ERROR") if failed else None,
    )


def _output(root: Span, generation: Span | None) -> str:
    """The model call's output text, else its output object, else the root span's output."""
    if generation is not None:
        if generation.output:
            return generation.output
        found = text_of(first(generation.attributes or {}, OUTPUT_OBJECT_KEYS))
        if found:
            return found
    if root.output:
        return root.output
    return text_of(first(root.attributes or {}, OUTPUT_OBJECT_KEYS)) or ""


# --- the regression gate's baseline ----------------------------------------------------


async def find_baseline(
    session: AsyncSession, *, app_id: str, experiment_key: str, tree_hash: str
) -> Baseline:
    """The run of ``experiment_key`` at ``tree_hash``, else its newest run; with its scores
    per (row input hash, scorer). No run is an answer too: ``resolved`` is null."""
    candidates = (
        select(
            Trace.dataset_run_id.label("id"),
            func.coalesce(func.max(Trace.tree_hash), "").label("tree_hash"),
            func.max(Trace.received_at).label("latest"),
        )
        .where(
            Trace.app_id == app_id,
            Trace.experiment_key == experiment_key,
            Trace.dataset_run_id.is_not(None),
        )
        .group_by(Trace.dataset_run_id)
        .subquery("candidates")
    )
    exact = case((candidates.c.tree_hash == tree_hash, 1), else_=0)
    run = (
        await session.execute(
            select(candidates.c.id, candidates.c.tree_hash)
            .order_by(exact.desc(), candidates.c.latest.desc(), candidates.c.id.desc())
            .limit(1)
        )
    ).first()
    if run is None:
        return Baseline(resolved=None, rows=[])
    rows = await run_rows(session, app_id=app_id, run_id=run.id)
    return Baseline(
        resolved=BaselineRun(
            runId=run.id, treeHash=run.tree_hash, matchedExactCommit=run.tree_hash == tree_hash
        ),
        rows=baseline_rows(rows),
    )


def baseline_rows(rows: Iterable[RunRow]) -> list[BaselineRow]:
    """What a run is as a baseline: one ``{inputHash, scorer, score}`` per score of each
    row whose input hashes, in the rows' order (the gate keeps the last of a pair)."""
    return [
        BaselineRow(inputHash=row.input_hash, scorer=score.name, score=score.score)
        for row in rows
        if row.input_hash is not None
        for score in row.item.scores
    ]


def _input_hash(root: Span) -> str | None:
    """``hashRowInput`` of the row's input: its dataset input mark, else the span's
    input; None when that is empty or not JSON (such a row can match nothing)."""
    text = text_of(first(root.attributes or {}, DATASET_INPUT_KEYS)) or root.input
    if not text:
        return None
    try:
        return hash_row_input(parse_json(text))
    except NotJson:
        return None
