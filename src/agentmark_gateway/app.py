"""The application factory: ``create_app(settings)`` builds one gateway process."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from agentmark_gateway import __version__, error_handlers, meta
from agentmark_gateway.api_keys.router import router as api_keys_router
from agentmark_gateway.apps.router import router as apps_router
from agentmark_gateway.audit.router import router as audit_router
from agentmark_gateway.auth.router import router as auth_router
from agentmark_gateway.bodies import BodyLimitMiddleware
from agentmark_gateway.config.router import router as config_router
from agentmark_gateway.datasets.router import router as datasets_router
from agentmark_gateway.experiments.router import router as experiments_router
from agentmark_gateway.forwarded import ForwardedSchemeMiddleware
from agentmark_gateway.metrics.router import router as metrics_router
from agentmark_gateway.nul import NulGuardMiddleware
from agentmark_gateway.permissions.enforce import PUBLIC_ROUTES, all_routes, route_permissions
from agentmark_gateway.permissions.gate import KeyGate
from agentmark_gateway.ratelimit import RateLimitHeadersMiddleware
from agentmark_gateway.read_timeouts import BodyReadTimeoutMiddleware
from agentmark_gateway.requests.router import router as requests_router
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.scores.legacy_router import router as legacy_scores_router
from agentmark_gateway.scores.router import router as scores_router
from agentmark_gateway.settings import Settings
from agentmark_gateway.templates.router import router as templates_router
from agentmark_gateway.traces.graph_router import router as graph_router
from agentmark_gateway.traces.legacy_router import router as legacy_traces_router
from agentmark_gateway.traces.router import router as traces_router
from agentmark_gateway.users.router import router as members_router

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
MANAGEMENT_ROUTERS = (auth_router, apps_router, api_keys_router, audit_router, members_router)


class GatewayApi(FastAPI):
    """The gateway's ASGI app: FastAPI, with ``KeyGate`` in front of all of it.

    The gate sits outside the framework's own middleware stack so that the SDKs'
    hot requests (a refused key, a template already rendered) cost only the key
    check; whatever it passes on meets the full stack as usual.
    """

    # Only the benchmark's (c) server puts another gate here (bench/apps.py).
    gate_factory: Callable[[ASGIApp, Gateway], ASGIApp] = KeyGate

    def build_middleware_stack(self) -> ASGIApp:
        return self.gate_factory(super().build_middleware_stack(), self.state.gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.middleware_stack is None or self.root_path:
            await super().__call__(scope, receive, send)
            return
        # Straight to the gate: FastAPI's own entry only adds its telemetry checks.
        scope["app"] = self
        await self.middleware_stack(scope, receive, send)


def create_app(settings: Settings | None = None, *, gateway: Gateway | None = None) -> GatewayApi:
    settings = settings or Settings()
    gateway = gateway or Gateway.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        # Everything built so far lives as long as the process: keep it out of the
        # collector's full passes, which would otherwise walk it all again and again.
        gc.freeze()
        try:
            yield
        finally:
            await gateway.stop()

    app = GatewayApi(
        title="AgentMark Gateway",
        version=__version__,
        description="Scoped API keys in front of an app's traces, scores, templates, "
        "datasets, metrics and experiments.",
        openapi_url="/v1/openapi.json",
        # /docs is the dashboard's (web/api_docs.py): Swagger UI from the package, not a CDN.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks look for configured providers on
        # every request (tens of µs); the gateway does not export its own traces.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.gateway = gateway
    app.state.settings = settings
    error_handlers.install(app)
    # KeyGate (outermost, see GatewayApi) answers a bad key on a hot route before a
    # NUL is even looked for; it leaves a body declared over the limit to
    # BodyLimitMiddleware, so 413 still comes before any key check.
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeoutMiddleware, seconds=settings.read_timeout_seconds)
    # Outermost of the stack: every layer inside sees the scheme a trusted proxy reports.
    app.add_middleware(ForwardedSchemeMiddleware, resolver=gateway.client_addresses)

    app.include_router(meta.router)
    # Data routes first: the router tries routes in order, and SDK calls are the
    # hot path (no data path can match a management path, so order is free).
    for router in (*DATA_ROUTERS, *MANAGEMENT_ROUTERS):
        app.include_router(router)
    _install_web(app)
    _install_openapi(app)
    return app


def _install_web(app: FastAPI) -> None:
    try:
        from agentmark_gateway.web.router import install
    except ImportError:  # the dashboard package is optional while it is built
        return
    install(app)


def describe_permissions(routers: tuple[APIRouter, ...]) -> None:
    """Put each data route's declared permissions into its OpenAPI operation (once)."""
    for router in routers:
        for route in all_routes(router.routes):
            permissions = route_permissions(route)
            if permissions is None or not isinstance(route, APIRoute):
                continue
            if route.openapi_extra and "x-required-permissions" in route.openapi_extra:
                continue
            needed = ", ".join(f"`{p}`" for p in permissions)
            base = f"{route.description}\n\n" if route.description else ""
            route.description = f"{base}Requires an API key with: {needed}."
            route.openapi_extra = {
                **(route.openapi_extra or {}),
                "x-required-permissions": list(permissions),
            }


describe_permissions(DATA_ROUTERS)


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _add_security(schema, app)
        _add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_security(schema: dict[str, Any], app: FastAPI) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "An app's API key, raw or as `Bearer <key>`.",
            },
            "SessionToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "From /v1/auth/login.",
            },
        }
    )
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    app_header = {
        "name": "X-Agentmark-App-Id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The app the API key belongs to.",
    }
    for route in all_routes(app.routes):
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
            continue
        permissions = route_permissions(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            public = (method, route.path) in PUBLIC_ROUTES
            _describe_errors(
                operation,
                data_route=permissions is not None,
                signed_in=not public,
                addressed="{" in route.path,
            )
            if permissions is not None:
                operation["security"] = [{"ApiKey": []}]
                params = operation.setdefault("parameters", [])
                if not any(p.get("name", "").lower() == "x-agentmark-app-id" for p in params):
                    params.append(app_header)
            elif not public:
                operation["security"] = [{"SessionToken": []}]


# What a create answers, and where its id goes next: OpenAPI links, so that clients
# and stateful testers (schemathesis) can chain create -> read, edit, delete.
LINKS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "/v1/scores",
        "scoreId",
        "$response.body#/data/id",
        (("get", "/v1/scores/{scoreId}"), ("delete", "/v1/scores/{scoreId}")),
    ),
    (
        "/v1/apps",
        "app_id",
        "$response.body#/data/id",
        (
            ("get", "/v1/apps/{app_id}"),
            ("patch", "/v1/apps/{app_id}"),
            ("delete", "/v1/apps/{app_id}"),
        ),
    ),
    (
        "/v1/api-keys",
        "key_id",
        "$response.body#/data/id",
        (
            ("get", "/v1/api-keys/{key_id}"),
            ("patch", "/v1/api-keys/{key_id}"),
            ("post", "/v1/api-keys/{key_id}/roll"),
            ("delete", "/v1/api-keys/{key_id}"),
        ),
    ),
    (
        "/v1/members",
        "user_id",
        "$response.body#/data/id",
        (("patch", "/v1/members/{user_id}"), ("delete", "/v1/members/{user_id}")),
    ),
)


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for source, parameter, value, targets in LINKS:
        created = paths.get(source, {}).get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = created.setdefault("links", {})
        for method, target in targets:
            operation = paths.get(target, {}).get(method)
            if operation is not None:
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: value},
                }


ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}

_ERROR_STATUSES = {
    "400": "Invalid request (body, query or path parameters)",
    "401": "Missing, malformed, unknown, deleted or expired credentials",
    "413": "Request body too large",
    "429": "Rate limited",
    "503": "Database unavailable; retry later",
}


def _describe_errors(
    operation: dict[str, Any], *, data_route: bool, signed_in: bool, addressed: bool
) -> None:
    """Errors as they really leave: the envelope with 400, never FastAPI's default 422."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    statuses = dict(_ERROR_STATUSES)
    if data_route:
        statuses["403"] = "The key lacks a permission this route needs"
    elif signed_in:
        statuses["403"] = "The user's organization role does not allow this"
    if addressed:
        statuses["404"] = "No such record (in this app)"
    for status, description in statuses.items():
        responses.setdefault(
            status,
            {
                "description": description,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
                },
            },
        )
