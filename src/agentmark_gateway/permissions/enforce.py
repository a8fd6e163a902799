"""Routes declare the permissions they need here; one function decides.

A data route takes ``key: VerifiedKey = requires("trace.read")``. The same
declaration feeds the route table (``agentmark-gateway permissions``), the
OpenAPI ``x-required-permissions`` extension and the test that walks every route.

``KeyGate`` (permissions/gate.py) applies the same declarations in front of
the framework for data routes whose path has no parameters (``gated_routes``);
the key it accepts rides along in the scope and ``requires()`` only checks its
permissions again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import Scope

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.cloud_only import CLOUD_ONLY_ROUTES
from agentmark_gateway.errors import ApiError, BadRequest, fresh, missing_permission
from agentmark_gateway.permissions.catalog import PERMISSION_NAMES, ordered

APP_ID_HEADER = "x-agentmark-app-id"
# Where KeyGate leaves the key it accepted; only server code writes the scope.
VERIFIED_KEY = "agentmark.verified_key"
# What the permission check found, for the key's usage counts (usage/counter.py):
# the route's permissions when the key held them all, else the first one missing.
PERMITTED = "agentmark.permitted"
MISSING = "agentmark.missing_permission"

# Routes anyone may call. Everything else under /v1 is a data route (API key and
# permissions) or a management route (user session); a test holds us to it.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/v1/capabilities"),
        # The price table the gateway costs spans with, as AgentMark's API serves it.
        ("GET", "/v1/pricing"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/docs"),
        # Sign-in itself needs no session; it is throttled per email instead.
        ("POST", "/v1/auth/login"),
        # AgentMark Cloud's git deploys: a 501 that holds no data, for anyone.
        *CLOUD_ONLY_ROUTES,
    }
)


def first_missing(key: VerifiedKey, required: tuple[str, ...]) -> str | None:
    """The first permission the route declares that the key lacks; None when allowed."""
    for permission in required:
        if permission not in key.permissions:
            return permission
    return None


def check_permissions(key: VerifiedKey, required: tuple[str, ...], scope: Scope) -> None:
    """Allowed when the key holds every permission the route declares (else 403)."""
    missing = first_missing(key, required)
    if missing is not None:
        scope[MISSING] = missing
        raise missing_permission(missing)
    permitted = scope.get(PERMITTED)
    # A route with several requires() declarations exercises them all.
    scope[PERMITTED] = required if permitted is None else tuple(ordered({*permitted, *required}))


class Requires:
    """The dependency behind ``requires()``: verify the key, then its permissions."""

    def __init__(self, *permissions: str) -> None:
        unknown = set(permissions) - PERMISSION_NAMES
        if unknown or not permissions:
            raise ValueError(f"unknown or missing permissions: {sorted(unknown)}")
        self.permissions: tuple[str, ...] = tuple(ordered(permissions))

    async def __call__(self, request: Request) -> VerifiedKey:
        key: VerifiedKey | None = request.scope.get(VERIFIED_KEY)
        if key is None:
            key = await verify_key(request)
        check_permissions(key, self.permissions, request.scope)
        if request.scope.get("query_string"):
            refuse_unknown_query_params(request)
        return key


async def verify_key(request: Request) -> VerifiedKey:
    """The request's API key: ``Authenticator.authenticate``, its refusal raised (401, 429)."""
    headers = request.headers
    key: VerifiedKey | ApiError = await request.app.state.gateway.authenticator.authenticate(
        headers.getlist("authorization"), headers.getlist(APP_ID_HEADER), request.scope
    )
    if isinstance(key, ApiError):
        raise fresh(key)
    return key


# Where a route keeps the query parameter names it declares, found on its first use.
_QUERY_NAMES = "_agentmark_query_names"


def refuse_unknown_query_params(request: Request) -> None:
    """400 for a parameter the route does not declare: a misspelt filter must not
    quietly widen the answer to the whole app's data."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if known is None:
        known = declared_query_params(route)
        setattr(route, _QUERY_NAMES, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise BadRequest(
            f"Invalid query parameters: unknown parameter '{unknown[0]}' (accepted: {accepted})",
            code="invalid_query_params",
        )


def declared_query_params(route: APIRoute) -> frozenset[str]:
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        names.update(param.alias for param in dependant.query_params)
        stack.extend(dependant.dependencies)
    return frozenset(names)


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


def gated_routes(routes: Sequence[BaseRoute]) -> dict[tuple[str, str], tuple[str, ...]]:
    """``(method, path) -> permissions`` of the data routes ``KeyGate`` may check early.

    Only paths without parameters, and only where the router would pick that data
    route: no route before it (routers try routes in order) matches the same
    method and path. Anything unusual ends the table; such routes are still
    checked by ``requires()`` as always.
    """
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    earlier: list[tuple[re.Pattern[str], frozenset[str] | None]] = []
    for route in _plain_routes(routes):
        if route is None:
            break
        path_regex: re.Pattern[str] = route.path_regex  # type: ignore[attr-defined]
        methods = getattr(route, "methods", None)
        allowed = frozenset(methods) if methods is not None else None
        permissions = route_permissions(route)
        path = getattr(route, "path", "")
        if permissions and allowed and not getattr(route, "param_convertors", True):
            for method in allowed:
                shadowed = (method, path) in table or any(
                    pattern.match(path) and (others is None or method in others)
                    for pattern, others in earlier
                )
                if not shadowed:
                    table[(method, path)] = permissions
        earlier.append((path_regex, allowed))
    return table


def _plain_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute | None]:
    """Routes in the router's order; None for one whose matching this module cannot mirror."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            if getattr(context, "prefix", "") or getattr(context, "dependencies", None):
                yield None
                return
            yield from _plain_routes(inner.routes)
        elif isinstance(getattr(route, "path_regex", None), re.Pattern):
            yield route
        else:
            yield None
            return
