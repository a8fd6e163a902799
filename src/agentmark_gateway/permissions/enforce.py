"""Routes declare the permissions they need here; one function decides.

A data route takes ``key: VerifiedKey = requires("trace.read")``. The same
declaration feeds the route table (``agentmark-gateway permissions``), the
OpenAPI ``x-required-permissions`` extension and the test that walks every route.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.errors import missing_permission
from agentmark_gateway.permissions.catalog import PERMISSION_NAMES, ordered

APP_ID_HEADER = "x-agentmark-app-id"

# Routes anyone may call. Everything else under /v1 is a data route (API key and
# permissions) or a management route (user session); a test holds us to it.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/v1/capabilities"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        # Sign-in itself needs no session; it is throttled per email instead.
        ("POST", "/v1/auth/login"),
    }
)


def check_permissions(key: VerifiedKey, required: tuple[str, ...]) -> None:
    """Allowed when the key holds every permission the route declares."""
    for permission in required:
        if permission not in key.permissions:
            raise missing_permission(permission)


class Requires:
    """The dependency behind ``requires()``: verify the key, then its permissions."""

    def __init__(self, *permissions: str) -> None:
        unknown = set(permissions) - PERMISSION_NAMES
        if unknown or not permissions:
            raise ValueError(f"unknown or missing permissions: {sorted(unknown)}")
        self.permissions: tuple[str, ...] = tuple(ordered(permissions))

    async def __call__(self, request: Request) -> VerifiedKey:
        gateway = request.app.state.gateway
        headers = request.headers
        key: VerifiedKey = await gateway.verify_request(
            headers.get("authorization"), headers.getlist(APP_ID_HEADER), request
        )
        check_permissions(key, self.permissions)
        return key


def requires(*permissions: str) -> Any:
    return Depends(Requires(*permissions))


def all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, looking inside included routers (which may be kept unflattened)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
        else:
            yield route


def route_permissions(route: BaseRoute) -> tuple[str, ...] | None:
    """The permissions a route declares, or None when it declares none."""
    if not isinstance(route, APIRoute):
        return None
    found: list[str] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Requires):
            found.extend(dependant.call.permissions)
        stack.extend(dependant.dependencies)
    return tuple(ordered(found)) if found else None
