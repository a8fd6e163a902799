"""/v1/templates and /v1/prompts: what the published AgentMark loaders read.

One route serves two kinds of file, by the path's suffix: ``.mdx``/``.json``
paths are built template ASTs, ``.jsonl`` paths are datasets (the same rows
that /v1/datasets manages). ``agentmark-prompt-core``'s ApiLoader reads
``data`` of the JSON answer for templates and asks for datasets with
``Accept: application/x-ndjson``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AfterValidator

from agentmark_gateway import jsonvalues
from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.bodies import read_body
from agentmark_gateway.body_stream import inflated_pieces
from agentmark_gateway.datasets import jsonl, upload
from agentmark_gateway.datasets import service as datasets
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.rendered import Rendered
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.settings import Settings
from agentmark_gateway.templates import service
from agentmark_gateway.templates.frontmatter import MAX_NAME_LENGTH
from agentmark_gateway.templates.paths import (
    MAX_PATH_LENGTH,
    check_path,
    dataset_name,
    is_dataset_path,
)
from agentmark_gateway.templates.schemas import (
    PromptKind,
    PromptPaths,
    PromptPathsResponse,
    Published,
    PublishedResponse,
    TemplateContent,
)
from agentmark_gateway.templates.stamp import check_commit_sha

router = APIRouter(tags=["Templates"], route_class=ApiRoute)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No template or dataset at this path in this app"}
}

NDJSON = "application/x-ndjson"

TemplatePath = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        description="Relative path: `math.prompt.mdx`, `agents/support.prompt.mdx` "
        "(templates) or `evals/math.jsonl` (a dataset).",
    ),
    AfterValidator(check_path),
]


CommitSha = Annotated[
    Annotated[str, AfterValidator(check_commit_sha)] | None,
    Query(
        description="The commit the template was built from: 4 to 64 hexadecimal characters. "
        "A prompt's frontmatter gets `agentmark_meta: {commit_sha}` (replacing any there), "
        "as AgentMark's own servers stamp it, so every GET serves it and prompt-core's runners "
        "copy it to their spans; `agentmark.json` keeps it for `GET /v1/config` and "
        "`/v1/score-configs`. Ignored for datasets. `agentmark-gateway templates push` sends it.",
    ),
]


def wants_ndjson(accept: str | None) -> bool:
    media_types = (part.split(";", 1)[0].strip().lower() for part in (accept or "").split(","))
    return NDJSON in media_types


@router.get(
    "/v1/templates",
    summary="Get a template's AST, or a dataset's rows",
    response_model=TemplateContent,
    responses={
        200: {
            "description": "`.mdx`/`.json`: the AST in `data`. `.jsonl`: the rows, as NDJSON "
            "when `Accept` includes `application/x-ndjson`, else a JSON array in `data`.",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **NOT_FOUND,
    },
)
async def get_template(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    path: TemplatePath,
    prompt_kind: Annotated[
        PromptKind | None,
        Query(alias="promptKind", description="Sent by the loaders as a hint; not needed here."),
    ] = None,
    key: VerifiedKey = requires("template.read"),
) -> Response:
    if not is_dataset_path(path):
        # Read before the database: a change after this point keeps the answer out of the cache.
        generation = gateway.templates.generation
        template = await service.get_template(db, app_id=key.app_id, path=path)
        response = JSONResponse({"data": template.content})
        gateway.templates.put(
            key.app_id,
            request.scope["query_string"],
            Rendered(tuple(response.raw_headers), bytes(response.body)),
            generation,
        )
        return response
    name = dataset_name(path)
    if wants_ndjson(request.headers.get("accept")):
        await datasets.get_dataset(db, app_id=key.app_id, name=name)  # 404 before streaming
        return StreamingResponse(_ndjson(gateway, key.app_id, name), media_type=NDJSON)
    rows = await datasets.all_rows(db, app_id=key.app_id, name=name)
    return JSONResponse({"data": rows})


async def _ndjson(gateway: Gateway, app_id: str, name: str) -> AsyncIterator[bytes]:
    # Its own session: the body is sent after the request's dependencies have closed theirs.
    async with gateway.sessionmaker() as session:
        async for batch in datasets.stream_rows(session, app_id=app_id, name=name):
            yield b"".join(jsonvalues.dumps_line(row) for row in batch)


_PUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "`.mdx`/`.json` paths: the built template AST (a JSON object). "
        "`.jsonl` paths: the dataset, one `{input, expected_output?, metadata?}` object a line; "
        "it replaces the dataset's rows (at most AGENTMARK_MAX_DATASET_ROWS of them, else 413 "
        "and nothing changes). May be gzip-encoded.",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            NDJSON: {"schema": {"type": "string"}},
        },
    }
}


@router.put(
    "/v1/templates",
    summary="Publish a template, or replace a dataset",
    response_model=PublishedResponse,
    responses={
        201: {"model": PublishedResponse, "description": "Created."},
        409: {"description": "Another writer kept the dataset busy; try again"},
    },
    openapi_extra=_PUT_BODY,
)
async def put_template(
    request: Request,
    response: Response,
    db: DbSession,
    gateway: GatewayDep,
    path: TemplatePath,
    commit_sha: CommitSha = None,
    key: VerifiedKey = requires("template.write"),
) -> PublishedResponse:
    if is_dataset_path(path):
        rows = await _dataset_rows(request, gateway.settings)
        dataset, created = await upload.replace_rows(
            db, app_id=key.app_id, name=dataset_name(path), lines=rows
        )
        published = Published(
            path=path,
            kind="dataset",
            row_count=len(rows),
            created_at=dataset.created_at,
            updated_at=dataset.updated_at,
        )
    else:
        body = await read_body(request, gateway.settings.max_body_bytes)
        template, created = await service.put_template(
            db, app_id=key.app_id, path=path, content=_template_ast(body), commit_sha=commit_sha
        )
        published = Published(
            path=path,
            kind="template",
            created_at=template.created_at,
            updated_at=template.updated_at,
        )
    response.status_code = 201 if created else 200
    return PublishedResponse(data=published)


async def _dataset_rows(request: Request, settings: Settings) -> list[bytes]:
    """The upload's rows, parsed as the body arrives: the row past the cap ends it at once.

    Parsing runs on a worker thread, a piece at a time, so the event loop keeps
    answering other requests meanwhile.
    """
    parser = jsonl.RowParser(max_rows=settings.max_dataset_rows)
    async for piece in inflated_pieces(request, settings.max_body_bytes):
        await to_thread.run_sync(parser.feed, piece)
    return await to_thread.run_sync(parser.finish)


def _template_ast(body: bytes) -> dict[str, Any]:
    try:
        content = jsonvalues.check_storable(jsonvalues.loads(body))
    except ValueError as exc:
        raise BadRequest(f"Template body: {exc}") from None
    if not isinstance(content, dict):
        raise BadRequest("Template body must be a JSON object (the built AST)")
    return content


@router.delete(
    "/v1/templates",
    status_code=204,
    summary="Delete a template, or a dataset with its rows",
    responses=NOT_FOUND,
)
async def delete_template(
    db: DbSession,
    path: TemplatePath,
    key: VerifiedKey = requires("template.write"),
) -> Response:
    if is_dataset_path(path):
        await datasets.delete_dataset(db, app_id=key.app_id, name=dataset_name(path))
    else:
        await service.delete_template(db, app_id=key.app_id, path=path)
    return Response(status_code=204)


@router.get("/v1/prompts", summary="List the paths of published templates")
async def list_prompts(
    db: DbSession,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_NAME_LENGTH,
            description="Only templates whose frontmatter `name` is exactly this.",
        ),
    ] = None,
    key: VerifiedKey = requires("template.read"),
) -> PromptPathsResponse:
    paths = await service.list_prompt_paths(db, app_id=key.app_id, name=name)
    return PromptPathsResponse(data=PromptPaths(paths=paths))
