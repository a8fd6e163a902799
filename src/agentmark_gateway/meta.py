"""Public routes: health, readiness, what this gateway serves, its model prices, and the 501s of
AgentMark Cloud's own routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from agentmark_gateway import __version__, cloud_only
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.db.readiness import READY_TIMEOUT_SECONDS, not_ready
from agentmark_gateway.error_handlers import RETRY_AFTER_SECONDS
from agentmark_gateway.errors import ServiceUnavailable
from agentmark_gateway.metrics.pricing_router import router as pricing_router
from agentmark_gateway.permissions.enforce import all_routes

router = APIRouter(tags=["Meta"], route_class=ApiRoute)
router.include_router(pricing_router)
router.include_router(cloud_only.router)

# The reference API's endpoint groups, each served when the gateway has this route.
ENDPOINTS = {
    "traces": "/v1/traces",
    "spans": "/v1/spans",
    "sessions": "/v1/sessions",
    "scores": "/v1/scores",
    "score_analytics": "/v1/scores/aggregations",
    "metrics": "/v1/metrics",
    "experiments": "/v1/experiments",
    "datasets": "/v1/datasets",
    "prompts": "/v1/prompts",
    "runs": "/v1/runs/{runId}/traces",
    "pricing": "/v1/pricing",
}
# AgentMark's API answers "local" for its development server and "cloud" for the
# hosted API; a gateway stands in for the hosted one.
TARGET = "cloud"


@router.get("/health", summary="Liveness and database reachability")
async def health(request: Request) -> dict[str, Any]:
    gateway = request.app.state.gateway
    async with gateway.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}


@router.get(
    "/ready",
    summary="Readiness: the database answers and its schema is current",
    description="200 when this process can serve; 503 `service_unavailable` with "
    f"`Retry-After` when its database does not answer within {READY_TIMEOUT_SECONDS:g} s "
    "or its schema is older than this version. For load balancers and orchestrators; "
    "`/health` is the liveness check.",
    responses={503: {"description": "Not ready: the message says why"}},
)
async def ready(request: Request) -> dict[str, Any]:
    reason = await not_ready(request.app.state.gateway.engine)
    if reason is not None:
        raise ServiceUnavailable(reason, headers={"Retry-After": RETRY_AFTER_SECONDS})
    return {"status": "ready", "version": __version__}


@router.get(
    "/v1/capabilities",
    summary="Which endpoints this gateway serves",
    description="AgentMark's capabilities document, without envelope: `target`, the "
    "gateway's `url` and one boolean per endpoint group, read from the routes it serves.",
)
async def capabilities(request: Request) -> dict[str, Any]:
    paths = {getattr(route, "path", None) for route in all_routes(request.app.routes)}
    return {
        "target": TARGET,
        "url": request.app.state.settings.base_url,
        "endpoints": {name: path in paths for name, path in ENDPOINTS.items()},
    }
