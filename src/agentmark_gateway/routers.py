"""Every router of the gateway, in the order the app includes them.

Data routes (an app's API key and its permissions) come first: the router
tries routes in order, and SDK calls are the hot path (no data path can match
a management path, so the order is free). Management routes take a user
session; the dashboard's pages come last.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from agentmark_gateway import meta
from agentmark_gateway.api_keys.router import router as api_keys_router
from agentmark_gateway.apps.router import router as apps_router
from agentmark_gateway.audit.router import router as audit_router
from agentmark_gateway.auth.router import router as auth_router
from agentmark_gateway.config.router import router as config_router
from agentmark_gateway.datasets.router import router as datasets_router
from agentmark_gateway.experiments.router import router as experiments_router
from agentmark_gateway.metrics.router import router as metrics_router
from agentmark_gateway.requests.router import router as requests_router
from agentmark_gateway.scores.legacy_router import router as legacy_scores_router
from agentmark_gateway.scores.router import router as scores_router
from agentmark_gateway.templates.router import router as templates_router
from agentmark_gateway.traces.graph_router import router as graph_router
from agentmark_gateway.traces.legacy_router import router as legacy_traces_router
from agentmark_gateway.traces.router import router as traces_router
from agentmark_gateway.usage.router import router as usage_router
from agentmark_gateway.users.router import router as members_router
from agentmark_gateway.web import router as web

DATA_ROUTERS = (
    traces_router,
    scores_router,
    templates_router,
    datasets_router,
    metrics_router,
    experiments_router,
    # The rest of AgentMark's reference API, and the old TypeScript SDK's routes.
    graph_router,
    requests_router,
    config_router,
    legacy_traces_router,
    legacy_scores_router,
)
MANAGEMENT_ROUTERS = (
    auth_router,
    apps_router,
    api_keys_router,
    usage_router,
    audit_router,
    members_router,
)


def api_routes() -> FastAPI:
    """An app holding every API route and nothing else (route tables, OpenAPI checks)."""
    app = FastAPI()
    include_api(app)
    return app


def include_api(app: FastAPI) -> None:
    """The public meta routes, then the data and management routers."""
    routers: tuple[APIRouter, ...] = (meta.router, *DATA_ROUTERS, *MANAGEMENT_ROUTERS)
    for router in routers:
        app.include_router(router)


def include_all(app: FastAPI) -> None:
    """Every route the gateway serves: the API, then the dashboard."""
    include_api(app)
    web.install(app)
