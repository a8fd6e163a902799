"""Experiments: the runs of each experiment, a run's rows, and two runs side by side
with the rows the regression gate would fail marked (experiments.service, .compare).

A run belongs to the experiment of its name and prompt (``runExperiment`` names a
run after its experiment key, a prompt run after the prompt), so the runs that
can sensibly be compared are listed together. Every read names the app of the
URL, so another app's run is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from agentmark_gateway.deps import DbSession
from agentmark_gateway.experiments import service as experiments
from agentmark_gateway.experiments.compare import compare_runs
from agentmark_gateway.experiments.schemas import ExperimentSummary
from agentmark_gateway.experiments.service import ExperimentFilters
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import AppRef, CurrentApp, area_context
from agentmark_gateway.web.paging import PageNumber, has_more, offset
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(prefix="/apps/{app_id}/experiments", route_class=WebRoute)

RUNS_PER_PAGE = 50
ROWS_PER_PAGE = 100
# Rows of each run a comparison reads; past this the page says it compared the first ones.
MAX_COMPARED = 500
# Runs offered in the comparison's pickers: the experiment's newest.
MAX_CHOICES = 100
RunId = Annotated[str, Query(min_length=1, max_length=255)]


@dataclass
class Experiment:
    """The runs of one experiment on the page, newest first."""

    name: str
    prompt_name: str
    runs: list[ExperimentSummary] = field(default_factory=list)

    @property
    def dataset_paths(self) -> list[str]:
        return sorted({run.dataset_path for run in self.runs if run.dataset_path})


def _grouped(runs: list[ExperimentSummary]) -> list[Experiment]:
    found: dict[tuple[str, str], Experiment] = {}
    for run in runs:
        key = (run.name, run.prompt_name)
        found.setdefault(key, Experiment(*key)).runs.append(run)
    return list(found.values())


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    runs, total = await experiments.list_experiments(
        db,
        app_id=app.id,
        filters=ExperimentFilters(),
        limit=RUNS_PER_PAGE,
        offset=offset(page, RUNS_PER_PAGE),
    )
    context = await area_context(request, db, viewer, app, "experiments")
    context.update(
        experiments=_grouped(runs),
        total=total,
        page=page,
        first=offset(page, RUNS_PER_PAGE),
        shown=len(runs),
        has_more=has_more(page, RUNS_PER_PAGE, total),
    )
    return render(request, "experiments/index.html", context)


async def _choices(db: DbSession, app: AppRef, *runs: ExperimentSummary) -> list[ExperimentSummary]:
    """The newest runs of the experiment of ``runs[0]``, with ``runs`` among them."""
    found, _total = await experiments.list_experiments(
        db,
        app_id=app.id,
        filters=ExperimentFilters(name=runs[0].name, prompt_name=runs[0].prompt_name),
        limit=MAX_CHOICES,
        offset=0,
    )
    listed = {run.id for run in found}
    return found + [run for run in runs if run.id not in listed]


def _older(choices: list[ExperimentSummary], run: ExperimentSummary) -> str | None:
    """The run just before ``run`` (``choices`` is newest first), else the newest other."""
    ids = [choice.id for choice in choices]
    position = ids.index(run.id)
    return next(iter(ids[position + 1 :] + ids[:position]), None)


def run_label(run: ExperimentSummary) -> str:
    """A run as the pages name it: its experiment and the start of its id (a UUID)."""
    return f"{run.name} · run {run.id[:8]}"


@router.get("/compare")
async def compare_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    base: RunId,
    run: RunId,
    tolerance: Annotated[float, Query(ge=0, le=1000)] = 0.0,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    comparison = await compare_runs(
        db, app_id=app.id, base_id=base, run_id=run, tolerance=tolerance, limit=MAX_COMPARED
    )
    choices = await _choices(db, app, comparison.run, comparison.base)
    context = await area_context(request, db, viewer, app, "experiments", [("Compare runs", None)])
    context.update(
        comparison=comparison,
        choices=choices,
        tolerance=tolerance,
        max_compared=MAX_COMPARED,
    )
    return render(request, "experiments/compare.html", context)


@router.get("/runs/{run_id:path}")
async def run_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    run_id: Annotated[str, Path(max_length=255)],
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    run = await experiments.get_run(db, app_id=app.id, run_id=run_id)
    rows = await experiments.run_rows(
        db, app_id=app.id, run_id=run.id, limit=ROWS_PER_PAGE, offset=offset(page, ROWS_PER_PAGE)
    )
    choices = await _choices(db, app, run)
    context = await area_context(request, db, viewer, app, "experiments", [(run_label(run), None)])
    context.update(
        run=run,
        rows=[row.item for row in rows],
        page=page,
        first=offset(page, ROWS_PER_PAGE),
        has_more=has_more(page, ROWS_PER_PAGE, run.item_count),
        choices=[choice for choice in choices if choice.id != run.id],
        older=_older(choices, run),
    )
    return render(request, "experiments/run.html", context)
