"""The two apps only the benchmark serves: the bare ASGI ceiling and the gateway
with authentication switched off on ``GET /v1/templates``.

Neither is reachable from ``agentmark-gateway serve``: only the bench launcher
(``python -m agentmark_gateway.bench.serve``) names these factories.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.utils import get_typed_return_annotation, get_typed_signature
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.app import create_app
from agentmark_gateway.permissions.catalog import PERMISSION_NAMES
from agentmark_gateway.permissions.enforce import Requires, all_routes, route_permissions
from agentmark_gateway.settings import Settings

BASELINE_BODY = b'{"data":{"status":"ok"}}'
BENCH_APP_ID_ENV = "AGENTMARK_BENCH_APP_ID"
UNAUTHENTICATED_ROUTE = ("GET", "/v1/templates")

_BASELINE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BASELINE_BODY)).encode()),
]


async def baseline_app(scope: Scope, receive: Receive, send: Send) -> None:
    """(a): no framework, no routing, no database; a constant small JSON body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _BASELINE_HEADERS})
    await send({"type": "http.response.body", "body": BASELINE_BODY})


def baseline_factory() -> Any:
    return baseline_app


def _is_key_check(default: Any) -> bool:
    return isinstance(default, DependsParam) and isinstance(default.dependency, Requires)


def _without_key_check(route: APIRoute, key: VerifiedKey) -> APIRoute:
    """The same endpoint and response model; its ``requires(...)`` parameter gets ``key``."""

    async def fixed_key() -> VerifiedKey:
        return key

    signature = get_typed_signature(route.endpoint)
    replaced = 0
    parameters = []
    for parameter in signature.parameters.values():
        if _is_key_check(parameter.default):
            parameter = parameter.replace(default=Depends(fixed_key))
            replaced += 1
        parameters.append(parameter)
    if replaced != 1:
        raise RuntimeError(f"expected one requires(...) parameter on {route.path}, saw {replaced}")
    original = route.endpoint
    if not inspect.iscoroutinefunction(original):
        raise RuntimeError(f"{route.path} is not an async endpoint")

    async def endpoint(**kwargs: Any) -> Any:
        return await original(**kwargs)

    endpoint.__name__ = f"bench_{original.__name__}"
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=get_typed_return_annotation(original)
    )
    return APIRoute(
        route.path,
        endpoint,
        methods=list(route.methods or ()),
        response_model=route.response_model,
        status_code=route.status_code,
        response_class=route.response_class,
        response_model_include=route.response_model_include,
        response_model_exclude=route.response_model_exclude,
        response_model_by_alias=route.response_model_by_alias,
        response_model_exclude_unset=route.response_model_exclude_unset,
        response_model_exclude_defaults=route.response_model_exclude_defaults,
        response_model_exclude_none=route.response_model_exclude_none,
        dependencies=route.dependencies,
        include_in_schema=False,
        name=f"bench_{route.name}",
    )


def _find_route(app: FastAPI, method: str, path: str) -> tuple[int, APIRoute]:
    """The route and the index of the top-level entry (router) that holds it."""
    for index, entry in enumerate(app.router.routes):
        for route in all_routes([entry]):
            if (
                isinstance(route, APIRoute)
                and route.path == path
                and method in (route.methods or ())
            ):
                return index, route
    raise LookupError(f"{method} {path} is not a route of the gateway")


def create_bench_app(settings: Settings, *, app_id: str) -> FastAPI:
    """(c): the gateway, where ``GET /v1/templates`` answers for ``app_id`` without a key.

    The unauthenticated copy sits just before the router holding the real route,
    inside a router of its own, so it is found the same way at the same cost; it
    shadows the real route, so the same URL and headers reach the same handler
    with the key check replaced by a constant.
    """
    app = create_app(settings)
    key = VerifiedKey(
        id="key_bench",
        app_id=app_id,
        name="bench",
        permissions=frozenset(PERMISSION_NAMES),
        expires_at=None,
    )
    index, route = _find_route(app, *UNAUTHENTICATED_ROUTE)
    bench_route = _without_key_check(route, key)
    if route_permissions(bench_route) is not None:
        raise RuntimeError("the bench copy of the route still checks a key")
    router = APIRouter()
    router.routes.append(bench_route)
    app.include_router(router)
    app.router.routes.insert(index, app.router.routes.pop())
    return app


def bench_factory() -> FastAPI:
    """Entry point of each bench server worker: settings and app id from the environment."""
    return create_bench_app(Settings(), app_id=os.environ[BENCH_APP_ID_ENV])
