"""/v1/datasets: list datasets, read and append rows, import rows from traces and spans.

A dataset name may contain ``/`` (``evals/math``); in a URL it is sent encoded,
``/v1/datasets/evals%2Fmath/rows``. Servers decode ``%2F`` before routing, so
the name parameter takes the rest of the path up to the route's own suffix:
``evals/math`` unencoded names the same dataset.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.datasets import service
from agentmark_gateway.datasets.mapping import RowMapping
from agentmark_gateway.datasets.schemas import (
    DatasetList,
    DatasetPublic,
    DatasetRowIn,
    DatasetRowList,
    DatasetRowPublic,
    ImportOutcome,
    ImportResponse,
    RowAppended,
    RowAppendedResponse,
    RowMappingIn,
    SpansImport,
    TracesImport,
)
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.templates.paths import MAX_DATASET_NAME_LENGTH, check_dataset_name

router = APIRouter(tags=["Datasets"], route_class=ApiRoute)

BUSY: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another writer kept the dataset busy; try again"}
}

# The ``:path`` convertor lets a (decoded) name hold slashes.
ROWS_PATH = "/v1/datasets/{datasetName:path}/rows"
FROM_TRACES_PATH = f"{ROWS_PATH}/from-traces"
FROM_SPANS_PATH = f"{ROWS_PATH}/from-spans"

DatasetName = Annotated[
    str,
    Path(
        alias="datasetName",
        min_length=1,
        max_length=MAX_DATASET_NAME_LENGTH,
        description="The dataset's path without `.jsonl`, URL-encoded (`evals%2Fmath`).",
    ),
    AfterValidator(check_dataset_name),
]


@router.get("/v1/datasets", summary="List datasets with their row counts")
async def list_datasets(
    db: DbSession,
    page: PageDep,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_DATASET_NAME_LENGTH,
            description="Exact match on the last segment of the name (`math` finds `evals/math`).",
        ),
    ] = None,
    key: VerifiedKey = requires("dataset.read"),
) -> DatasetList:
    datasets, total = await service.list_datasets(
        db, app_id=key.app_id, leaf=name, limit=page.limit, offset=page.offset
    )
    return DatasetList.model_validate(
        paginated([DatasetPublic(**vars(d)) for d in datasets], total, page)
    )


@router.get(ROWS_PATH, summary="List a dataset's rows with their line numbers")
async def list_rows(
    dataset_name: DatasetName,
    db: DbSession,
    page: PageDep,
    key: VerifiedKey = requires("dataset.read"),
) -> DatasetRowList:
    rows, total = await service.list_rows(
        db, app_id=key.app_id, name=dataset_name, limit=page.limit, offset=page.offset
    )
    public = [
        DatasetRowPublic(line_number=r.line_number, created_at=r.created_at, **r.data) for r in rows
    ]
    return DatasetRowList.model_validate(paginated(public, total, page))


@router.post(
    ROWS_PATH,
    status_code=201,
    summary="Append a row (creates the dataset on its first row)",
    responses=BUSY,
)
async def append_row(
    dataset_name: DatasetName,
    body: DatasetRowIn,
    db: DbSession,
    gateway: GatewayDep,
    key: VerifiedKey = requires("dataset.write"),
) -> RowAppendedResponse:
    [line] = await service.append_rows(
        db,
        app_id=key.app_id,
        name=dataset_name,
        rows=[body.to_data()],
        max_rows=gateway.settings.max_dataset_rows,
    )
    return RowAppendedResponse(data=RowAppended(line_number=line))


_IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    207: {"model": ImportResponse, "description": "Some ids failed; see each result."},
    **BUSY,
}


@router.post(
    FROM_TRACES_PATH,
    status_code=201,
    summary="Import rows from traces (one row per trace, from its root span)",
    responses=_IMPORT_RESPONSES,
    response_model_exclude_none=True,
)
async def import_from_traces(
    dataset_name: DatasetName,
    body: TracesImport,
    response: Response,
    db: DbSession,
    gateway: GatewayDep,
    key: VerifiedKey = requires("dataset.write", "trace.read"),
) -> ImportResponse:
    results = await service.import_from_traces(
        db,
        app_id=key.app_id,
        name=dataset_name,
        trace_ids=body.trace_ids,
        mapping=_mapping(body.mapping),
        max_rows=gateway.settings.max_dataset_rows,
    )
    return _outcome(results, response)


@router.post(
    FROM_SPANS_PATH,
    status_code=201,
    summary="Import rows from spans (one row per span id)",
    responses=_IMPORT_RESPONSES,
    response_model_exclude_none=True,
)
async def import_from_spans(
    dataset_name: DatasetName,
    body: SpansImport,
    response: Response,
    db: DbSession,
    gateway: GatewayDep,
    key: VerifiedKey = requires("dataset.write", "span.read"),
) -> ImportResponse:
    results = await service.import_from_spans(
        db,
        app_id=key.app_id,
        name=dataset_name,
        span_ids=body.span_ids,
        mapping=_mapping(body.mapping),
        max_rows=gateway.settings.max_dataset_rows,
    )
    return _outcome(results, response)


def _mapping(body: RowMappingIn | None) -> RowMapping | None:
    return None if body is None else RowMapping(**body.model_dump())


def _outcome(results: list[service.ImportResult], response: Response) -> ImportResponse:
    """201 when every id became a row, 207 (with the reason per id) otherwise."""
    failed = sum(1 for r in results if r.error is not None)
    response.status_code = 207 if failed else 201
    outcome = ImportOutcome.model_validate(
        {
            "added": len(results) - failed,
            "results": [
                {
                    "source_id": r.source_id,
                    "status": "failed" if r.error is not None else "created",
                    "line_number": r.line_number,
                    "error": r.error,
                }
                for r in results
            ],
        }
    )
    return ImportResponse(data=outcome)
