"""RequestObserver: the outermost layer, in front of the key check.

For every HTTP request it

- sets the request id (``request_id``) for the log lines written meanwhile and
  echoes it in the answer's ``X-Request-Id``;
- with metrics on (``AGENTMARK_METRICS_TOKEN``), counts the answer by route
  template and status, and a refusal (401, 403, 429) by its error code, read
  from the answer's body: the key check that refused it needs no counter of its
  own;
- answers ``GET /metrics`` for a caller with the metrics token.

It sits outside ``KeyGate`` so that the gate's own answers (a refused key, a
template sent from its cache) are counted and carry the id like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.observability import request_id
from agentmark_gateway.observability.metrics import (
    CONTENT_TYPE,
    FLUSH_SECONDS,
    Exporter,
    RequestStats,
)
from agentmark_gateway.permissions.enforce import all_routes

if TYPE_CHECKING:
    from agentmark_gateway.runtime import Gateway

__all__ = ["METRICS_PATH", "RequestObserver"]

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
# Route label of requests no route matched (404s of made-up paths): one series, not one a path.
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REFUSALS = frozenset({401, 403, 429})
# Error codes are our own few words; anything else in a refusal's body is counted as this.
OTHER = "other"

_NOT_AUTHORIZED = orjson.dumps({"error": {"code": "unauthorized", "message": "Not authorized"}})


class RequestObserver:
    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        token = gateway.settings.metrics_token
        self.token = f"Bearer {token.get_secret_value()}".encode() if token else None
        self.stats = RequestStats() if token else None
        self._exporter: Exporter | None = None
        self._flusher: asyncio.Task[None] | None = None
        # Paths without parameters, which are their own route template: the
        # routes KeyGate answers before any routing (built on the first request).
        self._plain_paths: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.stats is not None:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        the_id = request_id.from_headers(scope["headers"])
        id_header = (request_id.HEADER, the_id)
        # Not reset after the request: the servers run each request in a task of
        # its own (a context of its own), and the lines they write once the app
        # has returned (granian's access log) still belong to this request.
        request_id.REQUEST_ID.set(the_id)
        stats = self.stats
        if stats is None:

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), id_header]
                await send(message)

            await self.app(scope, receive, send_with_id)
            return

        # The same with the answer counted, in this frame rather than another
        # coroutine's: this runs for every request.
        status = 500  # when nothing was sent: the server answers 500
        code: str | None = None

        async def send_counted(message: Message) -> None:
            nonlocal status, code
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif status in REFUSALS and code is None:
                code = _error_code(message.get("body", b""))
            await send(message)

        started = perf_counter()
        try:
            if scope["path"] == METRICS_PATH:
                await self._scrape(scope, send_counted)
            else:
                await self.app(scope, receive, send_counted)
        finally:
            self._count(stats, scope, status, code, perf_counter() - started)

    def _count(
        self, stats: RequestStats, scope: Scope, status: int, code: str | None, elapsed: float
    ) -> None:
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        route = scope.get("route")
        if route is not None:
            label = getattr(route, "path", UNMATCHED)
        else:
            # No route matched, or none was tried: KeyGate answered a request for
            # a path without parameters, which is its own template.
            plain = self._plain_paths
            if plain is None:
                plain = self._plain_paths = _plain_paths(scope["app"].routes)
            label = scope["path"] if scope["path"] in plain else UNMATCHED
        stats.observe(method, label, status, elapsed)
        if status in REFUSALS:
            stats.refused(label, status, code or OTHER)

    # -- /metrics ---------------------------------------------------------------

    def exporter(self) -> Exporter:
        if self._exporter is None:
            assert self.stats is not None
            self._exporter = Exporter(self.stats, self.gateway)
        return self._exporter

    async def _scrape(self, scope: Scope, send: Send) -> None:
        if not self._authorized(scope["headers"]):
            await _answer(
                send,
                401,
                _NOT_AUTHORIZED,
                b"application/json",
                ((b"www-authenticate", b"Bearer"),),
            )
            return
        if scope["method"] != "GET":
            body = orjson.dumps({"error": {"code": "method_not_allowed", "message": "Use GET"}})
            await _answer(send, 405, body, b"application/json", ((b"allow", b"GET"),))
            return
        await _answer(send, 200, self.exporter().render(), CONTENT_TYPE.encode())

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        assert self.token is not None
        given = [value for name, value in headers if name == b"authorization"]
        # Compared in constant time; API keys and session tokens are never accepted here.
        return len(given) == 1 and hmac.compare_digest(given[0], self.token)

    # -- several workers ----------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Around the app's lifespan: in multiprocess mode, this worker's flushes."""

        async def receive_watched() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self._stop_flushing()
            return message

        async def send_watched(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self._start_flushing()
            await send(message)

        await self.app(scope, receive_watched, send_watched)

    def _start_flushing(self) -> None:
        exporter = self.exporter()
        if exporter.directory is not None and self._flusher is None:
            self._flusher = asyncio.create_task(_flush_every(exporter, FLUSH_SECONDS))

    async def _stop_flushing(self) -> None:
        if self._flusher is None:
            return
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        self._flusher = None
        self.exporter().stop()


async def _flush_every(exporter: Exporter, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            exporter.flush()
        except Exception:  # a full disk must not end the flushes for good
            log.warning("could not write this worker's metrics", exc_info=True)


def _plain_paths(routes: list[Any]) -> frozenset[str]:
    paths = {METRICS_PATH}
    for route in all_routes(routes):
        path = getattr(route, "path", None)
        if isinstance(path, str) and "{" not in path:
            paths.add(path)
    return frozenset(paths)


def _error_code(body: bytes) -> str:
    """The ``error.code`` of an envelope, when it is one of our plain words."""
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return OTHER
    if isinstance(code, str) and 0 < len(code) <= 64 and _is_word(code):
        return code
    return OTHER


def _is_word(code: str) -> bool:
    return code.isascii() and code.replace("_", "").isalpha()


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
