"""``/v1/config`` and ``/v1/score-configs``: the published ``agentmark.json``, read only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.config import service
from agentmark_gateway.deps import DbSession
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.enforce import requires

router = APIRouter(tags=["Config"], route_class=ApiRoute)

ScoreConfigName = Annotated[
    str, Path(min_length=1, max_length=255, description="The key in agentmark.json's scores map.")
]


@router.get(
    "/v1/config",
    summary="Get the project configuration",
    description="The `agentmark.json` published with the templates (`agentmark-gateway "
    "templates push`, or `PUT /v1/templates?path=agentmark.json`). `commit_sha` is the "
    "commit it was published with (`PUT /v1/templates?commit_sha=`), null without one. "
    "404 `config_not_found` when none was published.",
    responses={404: {"description": "No agentmark.json published for this app"}},
)
async def get_config(
    *, key: VerifiedKey = requires("template.read"), db: DbSession
) -> dict[str, Any]:
    config, commit_sha = await service.get_config(db, app_id=key.app_id)
    return {"data": {"commit_sha": commit_sha, "config": config}}


@router.get(
    "/v1/score-configs",
    summary="List score configs",
    description="The `scores` map of the published `agentmark.json`, sorted by name; an "
    "empty list when there is none. Read-only: publish a new `agentmark.json` to change it.",
)
async def list_score_configs(
    *, key: VerifiedKey = requires("score.read"), db: DbSession, page: PageDep
) -> dict[str, Any]:
    configs = await service.score_configs(db, app_id=key.app_id)
    return paginated(configs[page.offset : page.offset + page.limit], len(configs), page)


@router.get(
    "/v1/score-configs/{name}",
    summary="Get a score config",
    responses={404: {"description": "No score config of that name"}},
)
async def get_score_config(
    *, key: VerifiedKey = requires("score.read"), db: DbSession, name: ScoreConfigName
) -> dict[str, Any]:
    return {"data": await service.get_score_config(db, app_id=key.app_id, name=name)}
