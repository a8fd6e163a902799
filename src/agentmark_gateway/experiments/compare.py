"""Two runs side by side: each row of a run beside the base run's row of the same
input, its scores marked where the regression gate would fail them (gate.py).

Rows meet as the gate joins them, by the hash of their input: the base run is
read as its baseline (``service.baseline_rows``), exactly as
``GET /v1/experiments/baseline`` would send it, and each row of the compared run
is checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.experiments import gate, service
from agentmark_gateway.experiments.schemas import ExperimentItem, ExperimentSummary


@dataclass(frozen=True)
class ScoreCell:
    scorer: str
    base: float | None
    score: float | None
    regressed: bool


@dataclass(frozen=True)
class ComparedRow:
    item: ExperimentItem
    base: ExperimentItem | None  # the base run's row of the same input, if any
    cells: list[ScoreCell]

    @property
    def regressed(self) -> bool:
        return any(cell.regressed for cell in self.cells)


@dataclass(frozen=True)
class Comparison:
    base: ExperimentSummary
    run: ExperimentSummary
    scorers: list[str]
    rows: list[ComparedRow]
    capped: bool  # either run has more rows than were compared

    @property
    def matched(self) -> int:
        return sum(1 for row in self.rows if row.base is not None)

    @property
    def regressed_rows(self) -> int:
        return sum(1 for row in self.rows if row.regressed)

    @property
    def regressed_scores(self) -> int:
        return sum(1 for row in self.rows for cell in row.cells if cell.regressed)


async def compare_runs(
    session: AsyncSession,
    *,
    app_id: str,
    base_id: str,
    run_id: str,
    tolerance: float | None,
    limit: int,
) -> Comparison:
    """The first ``limit`` rows of each run, compared; not found for a run the app lacks."""
    base = await service.get_run(session, app_id=app_id, run_id=base_id)
    run = await service.get_run(session, app_id=app_id, run_id=run_id)
    base_rows = await service.run_rows(session, app_id=app_id, run_id=base_id, limit=limit)
    rows = await service.run_rows(session, app_id=app_id, run_id=run_id, limit=limit)
    baseline = gate.baseline_scores(service.baseline_rows(base_rows))
    base_items = {row.input_hash: row.item for row in base_rows if row.input_hash is not None}
    scorers = sorted({score.name for r in (*base_rows, *rows) for score in r.item.scores})
    compared = []
    for row in rows:
        own = {score.name: score.score for score in row.item.scores}
        cells = []
        for scorer in scorers:
            before = None if row.input_hash is None else baseline.get((row.input_hash, scorer))
            after = own.get(scorer)
            cells.append(ScoreCell(scorer, before, after, gate.regressed(before, after, tolerance)))
        matched = None if row.input_hash is None else base_items.get(row.input_hash)
        compared.append(ComparedRow(item=row.item, base=matched, cells=cells))
    return Comparison(
        base=base,
        run=run,
        scorers=scorers,
        rows=compared,
        capped=max(base.item_count, run.item_count) > limit,
    )
