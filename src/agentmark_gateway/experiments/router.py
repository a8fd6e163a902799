"""``/v1/experiments``: record runs, list and read them, find a run's baseline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.experiments import service
from agentmark_gateway.experiments.schemas import (
    ExperimentCreate,
    ExperimentDetail,
    ExperimentPage,
)
from agentmark_gateway.experiments.service import ExperimentFilters
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.scores.schemas import DayOrMoment, Text

router = APIRouter(tags=["Experiments"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such run in this app"}}

ExperimentId = Annotated[
    Text, Path(alias="experimentId", max_length=64, description="The run's id (exp_...).")
]
KeyParam = Annotated[Text | None, Query(max_length=255, description="The run's experiment_key")]
PromptParam = Annotated[Text | None, Query(max_length=1024, description="The prompt's path")]
DatasetParam = Annotated[Text | None, Query(max_length=1024, description="The dataset's path")]
HashParam = Annotated[Text | None, Query(max_length=64)]


async def experiment_filters(
    experiment_key: KeyParam = None,
    prompt_path: PromptParam = None,
    dataset_path: DatasetParam = None,
    commit_sha: HashParam = None,
    tree_hash: HashParam = None,
    start_date: Annotated[DayOrMoment | None, Query(description="Recorded at or after")] = None,
    end_date: Annotated[DayOrMoment | None, Query(description="Recorded at or before")] = None,
) -> ExperimentFilters:
    return ExperimentFilters(
        experiment_key=experiment_key,
        prompt_path=prompt_path,
        dataset_path=dataset_path,
        commit_sha=commit_sha,
        tree_hash=tree_hash,
        start_date=start_date,
        end_date=end_date,
    )


@router.post(
    "/v1/experiments",
    status_code=201,
    summary="Record an experiment run and its item results",
    description="The run and all its items are stored in one transaction, or not at all.",
)
async def record_experiment(
    body: ExperimentCreate, db: DbSession, key: VerifiedKey = requires("experiment.write")
) -> dict[str, ExperimentDetail]:
    return {"data": await service.record_experiment(db, app_id=key.app_id, run=body)}


@router.get("/v1/experiments", summary="List experiment runs, newest first")
async def list_experiments(
    db: DbSession,
    page: PageDep,
    filters: Annotated[ExperimentFilters, Depends(experiment_filters)],
    key: VerifiedKey = requires("experiment.read"),
) -> ExperimentPage:
    runs, total = await service.list_experiments(
        db, app_id=key.app_id, filters=filters, limit=page.limit, offset=page.offset
    )
    return ExperimentPage.model_validate(paginated(runs, total, page))


@router.get(
    "/v1/experiments/baseline",
    summary="The run a new run should be compared against",
    description=(
        "The most recent run that matches every given `experiment_key`, `prompt_path` "
        "and `dataset_path` (at least `experiment_key` or `prompt_path` is required) "
        "and was made from other sources than `tree_hash`: a run of the same tree is "
        "the run under comparison or a retry of it, never its baseline. Runs that "
        "recorded no tree hash count as other sources. Without `tree_hash`, simply "
        "the most recent matching run. 404 `experiment_not_found` when none matches."
    ),
    responses=NOT_FOUND,
)
async def baseline(
    db: DbSession,
    experiment_key: KeyParam = None,
    prompt_path: PromptParam = None,
    dataset_path: DatasetParam = None,
    tree_hash: Annotated[
        Text | None, Query(max_length=64, description="The new run's tree hash, to skip")
    ] = None,
    key: VerifiedKey = requires("experiment.read"),
) -> dict[str, ExperimentDetail]:
    if experiment_key is None and prompt_path is None:
        raise BadRequest(
            "Name the experiment: experiment_key or prompt_path", code="invalid_query_params"
        )
    run = await service.find_baseline(
        db,
        app_id=key.app_id,
        experiment_key=experiment_key,
        prompt_path=prompt_path,
        dataset_path=dataset_path,
        tree_hash=tree_hash,
    )
    return {"data": run}


@router.get(
    "/v1/experiments/{experimentId}",
    summary="Get an experiment run with its items and per-score summaries",
    responses=NOT_FOUND,
)
async def get_experiment(
    experiment_id: ExperimentId, db: DbSession, key: VerifiedKey = requires("experiment.read")
) -> dict[str, ExperimentDetail]:
    return {
        "data": await service.get_experiment(db, app_id=key.app_id, experiment_id=experiment_id)
    }
