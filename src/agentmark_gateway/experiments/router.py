"""``/v1/experiments`` and ``/v1/runs``: runs as the clients record them, and their baseline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import NotFound
from agentmark_gateway.experiments import service
from agentmark_gateway.experiments.schemas import (
    BaselineResponse,
    ExperimentDetail,
    ExperimentPage,
)
from agentmark_gateway.experiments.service import ExperimentFilters
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.pagination import Page, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.scores.schemas import Text
from agentmark_gateway.traces import service as traces_service
from agentmark_gateway.traces.filters import Sort, TraceFilters
from agentmark_gateway.traces.schemas import TraceListResponse

router = APIRouter(tags=["Experiments"], route_class=ApiRoute)

# The reference API pages experiments and run traces by at most 200.
MAX_LIMIT = 200

RUN_ID = "The run's id (its agentmark.dataset_run_id)."
Required = Annotated[Text, Query(min_length=1, max_length=1000)]


async def run_page(
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset, response=response)


RunPage = Annotated[Page, Depends(run_page)]


async def experiment_filters(
    prompt_name: Annotated[Text | None, Query(max_length=1000)] = None,
    dataset_path: Annotated[Text | None, Query(max_length=1000)] = None,
    start_date: Annotated[DayOrMoment | None, Query(description="Created at or after")] = None,
    end_date: Annotated[DayOrMoment | None, Query(description="Created at or before")] = None,
) -> ExperimentFilters:
    return ExperimentFilters(
        prompt_name=prompt_name,
        dataset_path=dataset_path,
        start_date=start_date,
        end_date=end_date,
    )


@router.get(
    "/v1/experiments",
    summary="List experiments (dataset runs), newest first",
    description=(
        "One experiment per `agentmark.dataset_run_id` among the app's root spans, with "
        "its aggregates and per-scorer averages. `prompt_name` and `dataset_path` match "
        "exactly; `start_date`/`end_date` bound `createdAt`."
    ),
)
async def list_experiments(
    db: DbSession,
    page: RunPage,
    filters: Annotated[ExperimentFilters, Depends(experiment_filters)],
    key: VerifiedKey = requires("experiment.read"),
) -> ExperimentPage:
    runs, total = await service.list_experiments(
        db, app_id=key.app_id, filters=filters, limit=page.limit, offset=page.offset
    )
    return ExperimentPage.model_validate(paginated(runs, total, page))


@router.get(
    "/v1/experiments/baseline",
    summary="A run's baseline scores, for the regression gate",
    description=(
        "The run of `experiment_key` whose tree hash is `tree_hash` "
        "(`matchedExactCommit: true`), else the newest run of `experiment_key` "
        "(`matchedExactCommit: false`), with one row per score of each of its rows: "
        "`inputHash` is prompt-core's `hashRowInput` of the row's input. "
        "`dataset_path` is accepted and ignored: rows are matched by input. "
        "No run at all is not an error: `resolved` is null and `rows` empty."
    ),
    response_model=BaselineResponse,
)
async def baseline(
    db: DbSession,
    experiment_key: Required,
    tree_hash: Required,
    dataset_path: Annotated[Text | None, Query(max_length=1000)] = None,
    key: VerifiedKey = requires("experiment.read"),
) -> dict[str, Any]:
    found = await service.find_baseline(
        db, app_id=key.app_id, experiment_key=experiment_key, tree_hash=tree_hash
    )
    return {"data": found}


@router.get(
    "/v1/experiments/{experimentId}",
    summary="Get an experiment with its items and scores",
    responses={404: {"description": "Experiment not found"}},
)
async def get_experiment(
    experiment_id: Annotated[Text, Path(alias="experimentId", max_length=255, description=RUN_ID)],
    db: DbSession,
    key: VerifiedKey = requires("experiment.read"),
) -> dict[str, ExperimentDetail]:
    return {
        "data": await service.get_experiment(db, app_id=key.app_id, experiment_id=experiment_id)
    }


@router.get(
    "/v1/runs/{runId}/traces",
    summary="List the traces of a run",
    description="The same as `GET /v1/traces?dataset_run_id={runId}`, oldest first.",
    deprecated=True,
    response_model=TraceListResponse,
    responses={404: {"description": "Run not found"}},
)
async def list_run_traces(
    run_id: Annotated[Text, Path(alias="runId", max_length=255, description=RUN_ID)],
    db: DbSession,
    page: RunPage,
    key: VerifiedKey = requires("experiment.read"),
) -> dict[str, Any]:
    if not await service.run_exists(db, app_id=key.app_id, run_id=run_id):
        raise NotFound("Run not found")
    filters = TraceFilters(dataset_run_id=run_id, sort=Sort("start_time", descending=False))
    traces, total = await traces_service.list_traces(
        db, app_id=key.app_id, filters=filters, page=page
    )
    return paginated(traces, total, page)
