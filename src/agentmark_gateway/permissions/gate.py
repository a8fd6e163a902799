"""KeyGate: the key check of the SDKs' hot routes, in front of the whole framework.

The gateway's outermost layer (``GatewayApi.build_middleware_stack``). For a
data route whose path has no parameters (``gated_routes``: POST /v1/traces,
GET /v1/templates, POST /v1/scores, ...) it verifies the key and the route's
permissions itself:

- a refused key (401, 403, 429) is answered for the cost of the check alone:
  no routing, no database session, no dependency resolution, and the answer's
  bytes are rendered once per distinct error;
- an accepted key rides along in the scope, where ``requires()`` finds it and
  only checks its permissions again;
- ``GET /v1/templates`` answers this process has already rendered for the
  key's app (``TemplateCache``) are sent from here.

Everything else (other paths, a body declared over the limit, an unexpected
failure such as the database being away on a cache miss) goes on to the
framework, whose middlewares and handlers answer as always.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.errors import ApiError, missing_permission
from agentmark_gateway.permissions.enforce import VERIFIED_KEY, first_missing, gated_routes
from agentmark_gateway.ratelimit import SCOPE_KEY, Decision
from agentmark_gateway.templates.cache import Rendered, TemplateCache

if TYPE_CHECKING:
    from agentmark_gateway.runtime import Gateway

TEMPLATE_READ = ("GET", "/v1/templates")


class KeyGate:
    """Checks the API key and permissions of a hot data request before the framework sees it."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.body_limit = gateway.settings.max_body_bytes
        self.caches: dict[tuple[str, str], TemplateCache] = {TEMPLATE_READ: gateway.templates}
        # Built on the first request, when every router is included.
        self._table: dict[tuple[str, str], tuple[str, ...]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if self._table is None:
            self._table = gated_routes(scope["app"].router.routes)
        route = (scope["method"], scope["path"])
        permissions = self._table.get(route)
        if permissions is None:
            await self.app(scope, receive, send)
            return
        authorization: list[bytes] = []
        app_ids: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value)
            elif name == b"x-agentmark-app-id":
                app_ids.append(value)
            elif name == b"content-length" and not self._body_allowed(value):
                # BodyLimitMiddleware answers 413 before any key is looked at.
                await self.app(scope, receive, send)
                return
        try:
            key = self.known_key(scope, authorization, app_ids)
            if key is None:
                key = await self.authenticate(scope, authorization, app_ids)
        except ApiError as exc:
            await _send(send, scope, _error(exc))
            return
        except Exception:  # e.g. the database is away on a cache miss
            # requires() tries again inside the framework, whose handlers answer (503).
            await self.app(scope, receive, send)
            return
        missing = first_missing(key, permissions)
        if missing is not None:
            await _send(send, scope, _forbidden(missing))
            return
        scope[VERIFIED_KEY] = key
        cache = self.caches.get(route)
        if cache is not None:
            cached = cache.get(key.app_id, scope["query_string"])
            if cached is not None:
                await _send(send, scope, (200, cached))
                return
        await self.app(scope, receive, send)

    def known_key(
        self, scope: Scope, authorization: list[bytes], app_ids: list[bytes]
    ) -> VerifiedKey | None:
        """The request's key when this process knows it (401 and 429 raised), or
        None when the database must be asked (``authenticate``)."""
        return self.gateway.verify_known_request(*_credentials(authorization, app_ids), scope)

    async def authenticate(
        self, scope: Scope, authorization: list[bytes], app_ids: list[bytes]
    ) -> VerifiedKey:
        """The request's key (401), counted by the rate limiter (429)."""
        return await self.gateway.verify_request(*_credentials(authorization, app_ids), scope)

    def _body_allowed(self, declared: bytes) -> bool:
        return declared.isdigit() and int(declared) <= self.body_limit


def _credentials(authorization: list[bytes], app_ids: list[bytes]) -> tuple[list[str], list[str]]:
    """The header values as the verifier takes them."""
    return [value.decode("latin-1") for value in authorization], [
        value.decode("latin-1") for value in app_ids
    ]


def _error(exc: ApiError) -> tuple[int, Rendered]:
    if exc.headers:
        return exc.status_code, _render(exc.body(), exc.status_code, exc.headers)
    try:
        rendered = _rendered_error(
            exc.status_code, exc.code, exc.message, tuple(exc.extra.items()) if exc.extra else ()
        )
    except TypeError:  # an unhashable detail: render this one afresh
        rendered = _render(exc.body(), exc.status_code, None)
    return exc.status_code, rendered


@lru_cache(maxsize=64)
def _forbidden(permission: str) -> tuple[int, Rendered]:
    """The 403 naming ``permission`` (one of the catalog's few), rendered once."""
    return _error(missing_permission(permission))


@lru_cache(maxsize=128)
def _rendered_error(
    status: int, code: str, message: str, extra: tuple[tuple[str, Any], ...]
) -> Rendered:
    """The few distinct refusals, rendered once (bounded: messages come from our code)."""
    return _render({"error": {"code": code, "message": message, **dict(extra)}}, status, None)


def _render(body: dict[str, Any], status: int, headers: dict[str, str] | None) -> Rendered:
    response = JSONResponse(body, status_code=status, headers=headers)
    return Rendered(tuple(response.raw_headers), bytes(response.body))


async def _send(send: Send, scope: Scope, answer: tuple[int, Rendered]) -> None:
    status, rendered = answer
    headers = list(rendered.headers)
    decision: Decision | None = scope.get(SCOPE_KEY)
    if decision is not None:
        # As RateLimitHeadersMiddleware would have added them (a 429 has them already).
        present = {name for name, _ in headers}
        headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in decision.headers().items()
            if name.lower().encode("latin-1") not in present
        )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": rendered.body})
