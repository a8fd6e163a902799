"""Bounded request bodies: a size cap before and after gzip, never inflating a bomb whole."""

from __future__ import annotations

import zlib

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.errors import BadRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The body, inflated when ``Content-Encoding: gzip``; 413 past ``limit`` bytes either way."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadRequest(f"Unsupported Content-Encoding '{encoding}'", code="unsupported_encoding")
    return inflate(raw, limit, gzip=encoding != "deflate")


def inflate(data: bytes, limit: int, *, gzip: bool = True) -> bytes:
    """Every gzip member (or the one zlib stream) whole, checked to its end."""
    out = b""
    rest = data
    while True:
        decompressor = zlib.decompressobj(wbits=31 if gzip else 15)
        try:
            # max_length stops inflation one byte past the limit: a bomb costs us `limit` bytes.
            out += decompressor.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest("Body is not valid gzip", code="invalid_encoding") from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(f"Request body inflates to more than {limit} bytes")
        if not decompressor.eof:
            # Without its end (and checksum) a cut-off body could still parse, shorter.
            raise BadRequest("Body is not valid gzip: it ends early", code="invalid_encoding")
        rest = decompressor.unused_data
        if not rest:
            return out
        if not gzip:
            raise BadRequest("Body has data after its deflate stream", code="invalid_encoding")


class BodyLimitMiddleware:
    """Refuses any request whose (compressed) body exceeds the limit, before a handler runs."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit or declared < 0:
                    await _too_large(send, self.limit)
                    return
        seen = 0
        limit = self.limit

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _too_large(send: Send, limit: int) -> None:
    import json

    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"Request body is larger than {limit} bytes",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
