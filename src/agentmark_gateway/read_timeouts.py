"""Clients that send half a request: deadlines for the headers and for the body.

A connection that opens and sends nothing, or sends part of its headers, or
part of its body, would otherwise hold a socket and a task for as long as it
likes; a few thousand such connections starve the server. Two places, because
the server and the app each see one half:

- ``HeaderTimeoutProtocol`` is the server's HTTP protocol (uvicorn's httptools
  one) with a timer from the connection's first moment, or a request's first
  byte, until its headers are complete: past it, 408 and the connection closes.
  uvicorn has no such timer of its own before the first request.
- ``BodyReadTimeoutMiddleware`` bounds each wait for the next part of a body:
  past it, the request ends with 408 and the connection closes.

Both use ``AGENTMARK_READ_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agentmark_gateway.errors import RequestTimeout
from agentmark_gateway.settings import Settings

__all__ = ["BodyReadTimeoutMiddleware", "HeaderTimeoutProtocol"]

HEADERS_TOO_SLOW = "The request headers were not sent in time"
BODY_TOO_SLOW = "The request body was not sent in time"


def _raw_answer(error: RequestTimeout) -> bytes:
    body = json.dumps(error.body()).encode()
    head = (
        f"HTTP/1.1 {error.status_code} Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


@cache
def _header_timeout() -> float:
    # The server builds this protocol itself, in each worker process, without the
    # app's settings: read the setting once per process from the environment.
    return Settings().read_timeout_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers."""

    ANSWER = _raw_answer(RequestTimeout(HEADERS_TOO_SLOW))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(_header_timeout(), self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The slow headers are a pipelined request's: let the answer in
            # progress finish, then close instead of waiting for them.
            self.cycle.keep_alive = False
            return
        self.transport.write(self.ANSWER)
        self.transport.close()


class BodyReadTimeoutMiddleware:
    """Each wait for the next part of a request body is bounded; past it, 408.

    Once the body is complete, ``receive`` is passed through untouched: a
    streaming answer waits on it for a disconnect as long as it streams.
    """

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                # Connection: close, as the rest of the body may never come.
                raise RequestTimeout(BODY_TOO_SLOW, headers={"Connection": "close"}) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except RequestTimeout as error:
            # Raised where no error handler turned it into an answer (a middleware
            # reading the body): answer here, unless an answer had begun.
            if started:
                raise
            await _send_error(send, error)


async def _send_error(send: Send, error: RequestTimeout) -> None:
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
