"""``/v1/scores``: create one or a batch, list, read, name, aggregate and delete scores."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import BadRequest, PayloadTooLarge
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.scores import service
from agentmark_gateway.scores.schemas import (
    MAX_BATCH_ITEMS,
    MAX_CLIENT_ID,
    BatchItemResult,
    BatchResult,
    BatchSummary,
    ItemError,
    ScoreAggregation,
    ScoreBatch,
    ScoreBatchItem,
    ScoreCreate,
    ScoreCreated,
    ScorePage,
    ScorePublic,
    Text,
    check_text,
)
from agentmark_gateway.scores.service import ScoreFilters
from agentmark_gateway.usage.counter import stored

router = APIRouter(tags=["Scores"], route_class=ApiRoute)

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such score in this app"}}

ScoreId = Annotated[Text, Path(alias="scoreId", max_length=64, description="The score's id.")]


async def score_filters(
    resource_id: Annotated[Text | None, Query(max_length=255, description="Trace or span")] = None,
    name: Annotated[Text | None, Query(max_length=255, description="Score name")] = None,
    source: Annotated[Text | None, Query(max_length=64, description="e.g. api, eval")] = None,
    start_date: Annotated[DayOrMoment | None, Query(description="Created at or after")] = None,
    end_date: Annotated[DayOrMoment | None, Query(description="Created at or before")] = None,
) -> ScoreFilters:
    return ScoreFilters(
        resource_id=resource_id,
        name=name,
        source=source,
        start_date=start_date,
        end_date=end_date,
    )


Filters = Annotated[ScoreFilters, Depends(score_filters)]


@router.post("/v1/scores", status_code=201, summary="Create a score")
async def create_score(
    body: ScoreCreate,
    request: Request,
    gateway: GatewayDep,
    key: VerifiedKey = requires("score.write"),
) -> dict[str, ScoreCreated]:
    (row,) = await service.write_scores(gateway.writes, app_id=key.app_id, scores=[body])
    stored(request, scores=1)
    return {"data": service.created(row)}


@router.post(
    "/v1/scores/batch",
    status_code=201,
    response_model_exclude_none=True,
    summary="Create up to 1000 scores, each validated on its own",
    description=(
        "Answers 201 when every item was stored, 207 when some were (the results say "
        "which), 400 when none was valid (the error carries the same results) and 413 "
        f"above {MAX_BATCH_ITEMS} items. Valid items are stored together in one "
        "transaction; an invalid item never stops the others. `client_id` is echoed "
        "in its item's result and not stored."
    ),
    responses={
        207: {"description": "Some items were stored", "model": dict[str, BatchResult]},
        400: {"description": "No item was valid; the error carries results and summary"},
        413: {"description": f"More than {MAX_BATCH_ITEMS} items; nothing was stored"},
    },
)
async def create_scores(
    body: ScoreBatch,
    request: Request,
    response: Response,
    gateway: GatewayDep,
    key: VerifiedKey = requires("score.write"),
) -> dict[str, BatchResult]:
    if len(body.scores) > MAX_BATCH_ITEMS:
        raise PayloadTooLarge(
            f"A batch holds at most {MAX_BATCH_ITEMS} scores; this one has {len(body.scores)}"
        )
    results: list[BatchItemResult] = []
    valid: list[tuple[BatchItemResult, ScoreBatchItem]] = []
    for index, raw in enumerate(body.scores):
        result = BatchItemResult(index=index, status="error", client_id=_client_id(raw))
        results.append(result)
        try:
            item = ScoreBatchItem.model_validate(raw)
        except ValidationError as exc:
            result.error = _item_error(exc)
            continue
        valid.append((result, item))

    rows = []
    if valid:
        rows = await service.write_scores(
            gateway.writes, app_id=key.app_id, scores=[i for _, i in valid]
        )
    for (result, _), row in zip(valid, rows, strict=True):
        result.status, result.id = "success", row["id"]
    stored(request, scores=len(rows))

    summary = BatchSummary(total=len(results), succeeded=len(rows), failed=len(results) - len(rows))
    if not rows:
        raise BadRequest(
            "No score in the batch is valid",
            results=[r.model_dump(mode="json", exclude_none=True) for r in results],
            summary=summary.model_dump(),
        )
    if summary.failed:
        response.status_code = 207
    return {"data": BatchResult(results=results, summary=summary)}


def _client_id(raw: Any) -> str | None:
    """The item's client id, when readable, so even an invalid item can be matched."""
    if not isinstance(raw, dict):
        return None
    value = raw.get("client_id", raw.get("clientId"))
    if not isinstance(value, str) or len(value) > MAX_CLIENT_ID:
        return None
    try:
        return check_text(value)
    except ValueError:  # unprintable in a JSON answer
        return None


def _item_error(exc: ValidationError) -> ItemError:
    details = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
    first = details[0]
    where = f"{first['field']}: " if first["field"] else ""
    return ItemError(
        code="invalid_score", message=f"Invalid score: {where}{first['message']}", details=details
    )


@router.get("/v1/scores", summary="List scores")
async def list_scores(
    db: DbSession, page: PageDep, filters: Filters, key: VerifiedKey = requires("score.read")
) -> ScorePage:
    scores, total = await service.list_scores(
        db, app_id=key.app_id, filters=filters, limit=page.limit, offset=page.offset
    )
    return ScorePage.model_validate(paginated([service.to_public(s) for s in scores], total, page))


@router.get("/v1/scores/names", summary="List the distinct score names")
async def score_names(
    db: DbSession, key: VerifiedKey = requires("score.read")
) -> dict[str, list[str]]:
    return {"data": await service.score_names(db, app_id=key.app_id)}


@router.get(
    "/v1/scores/aggregations",
    summary="Count, mean, min, max and label counts per score name",
)
async def score_aggregations(
    db: DbSession, filters: Filters, key: VerifiedKey = requires("score.read")
) -> dict[str, list[ScoreAggregation]]:
    return {"data": await service.aggregate_scores(db, app_id=key.app_id, filters=filters)}


@router.get("/v1/scores/{scoreId}", summary="Get a score", responses=NOT_FOUND)
async def get_score(
    score_id: ScoreId, db: DbSession, key: VerifiedKey = requires("score.read")
) -> dict[str, ScorePublic]:
    score = await service.get_score(db, app_id=key.app_id, score_id=score_id)
    return {"data": service.to_public(score)}


@router.delete(
    "/v1/scores/{scoreId}",
    status_code=204,
    summary="Delete a score",
    responses=NOT_FOUND,
)
async def delete_score(
    score_id: ScoreId, db: DbSession, key: VerifiedKey = requires("score.delete")
) -> Response:
    await service.delete_score(db, app_id=key.app_id, score_id=score_id)
    return Response(status_code=204)
