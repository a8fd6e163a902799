"""``POST /v1/score``: the old TypeScript SDK's name for ``POST /v1/scores``.

The same handler serves both paths, so body, answer and checks cannot drift apart.
"""

from __future__ import annotations

from fastapi import APIRouter

from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.scores.router import create_score

router = APIRouter(tags=["Scores"], route_class=ApiRoute)

router.add_api_route(
    "/v1/score",
    create_score,
    methods=["POST"],
    status_code=201,
    summary="Create a score (old name of POST /v1/scores)",
    description="Kept for `@agentmark/sdk` 4.x, which posts `{resourceId, name, score, label, "
    "reason, type}` here and returns `data`. Same body, answer and checks as "
    "`POST /v1/scores`; `source` defaults to `api`.",
    operation_id="create_score_legacy",
)
