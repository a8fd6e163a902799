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
- a route's feature may hand the gate a cache of answers already rendered
  (``answers``; today ``GET /v1/templates``, from templates/cache.py): a hit
  for the key's app is sent from here.

Why a key is refused is decided in one place, ``Authenticator.authenticate``
(api_keys/authenticate.py); the gate only routes and sends bytes.

Everything else (other paths, a body declared over the limit, an unexpected
failure such as the database being away on a cache miss) goes on to the
framework, whose middlewares and handlers answer as always.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Protocol

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.api_keys.authenticate import Authenticator
from agentmark_gateway.errors import ApiError, missing_permission
from agentmark_gateway.permissions.enforce import (
    MISSING,
    PERMITTED,
    VERIFIED_KEY,
    first_missing,
    gated_routes,
)
from agentmark_gateway.ratelimit import with_rate_limit_headers
from agentmark_gateway.rendered import Rendered

Route = tuple[str, str]  # (method, path)
Observer = Callable[[Scope, int], None]


class AnswerCache(Protocol):
    """Answers a route's handler rendered, by app and raw query string."""

    def get(self, app_id: str, query: bytes) -> Rendered | None: ...


class KeyGate:
    """Checks the API key and permissions of a hot data request before the framework sees it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        body_limit: int,
        answers: Mapping[Route, AnswerCache],
        observe: Observer | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.body_limit = body_limit
        self.answers = answers
        # Told the status of every answer (usage counts per key); None: nobody listens.
        self.observe = observe
        # Built on the first request, when every router is included.
        self._table: dict[Route, tuple[str, ...]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if self._table is None:
            self._table = gated_routes(scope["app"].router.routes)
        route = (scope["method"], scope["path"])
        permissions = self._table.get(route)
        if permissions is None:
            await self._pass(scope, receive, send)
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
                await self._pass(scope, receive, send)
                return
        credentials = _decoded(authorization), _decoded(app_ids)
        try:
            key = self.authenticator.authenticate_known(*credentials, scope)
            if key is None:
                key = await self.authenticator.authenticate(*credentials, scope)
        except Exception:  # e.g. the database is away on a cache miss
            # requires() tries again inside the framework, whose handlers answer (503).
            await self._pass(scope, receive, send)
            return
        if isinstance(key, ApiError):  # a refusal, returned as a value
            await self._answer(send, scope, _error(key))
            return
        missing = first_missing(key, permissions)
        if missing is not None:
            scope[MISSING] = missing
            await self._answer(send, scope, _forbidden(missing))
            return
        scope[VERIFIED_KEY] = key
        scope[PERMITTED] = permissions
        cache = self.answers.get(route)
        if cache is not None:
            cached = cache.get(key.app_id, scope["query_string"])
            if cached is not None:
                await self._answer(send, scope, (200, cached))
                return
        await self._pass(scope, receive, send)

    async def _pass(self, scope: Scope, receive: Receive, send: Send) -> None:
        """On to the framework, whose answer's status is observed as it starts."""
        if self.observe is not None:
            send = _observed(send, scope, self.observe)
        await self.app(scope, receive, send)

    async def _answer(self, send: Send, scope: Scope, answer: tuple[int, Rendered]) -> None:
        """The gate's own answer."""
        if self.observe is not None:
            self.observe(scope, answer[0])
        await _send(send, scope, answer)

    def _body_allowed(self, declared: bytes) -> bool:
        return declared.isdigit() and int(declared) <= self.body_limit


def _decoded(values: list[bytes]) -> list[str]:
    return [value.decode("latin-1") for value in values]


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
    headers = with_rate_limit_headers(scope, rendered.headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": rendered.body})


def _observed(send: Send, scope: Scope, observe: Observer) -> Send:
    """``send``, telling ``observe`` the status as the answer starts."""

    async def send_observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            observe(scope, message["status"])
        await send(message)

    return send_observed
