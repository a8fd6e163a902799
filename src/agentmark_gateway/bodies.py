"""Bounded request bodies: a size cap before and after gzip, never inflating a bomb whole."""

from __future__ import annotations

import zlib

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.errors import BadRequest, PayloadTooLarge

# Real clients send one gzip member; a body of thousands is an attack on the loop below.
MAX_GZIP_MEMBERS = 64
# Below this many compressed bytes even a bomb of the best ratio (about 1:1000)
# inflates in a millisecond or so; bigger bodies inflate on a worker thread.
INLINE_INFLATE_BYTES = 1024
# The first bite of input fed to each member's decompressor; it doubles while
# the member goes on. zlib copies what it did not use out of each bite, so a
# member costs at most about twice its own size, never the rest of the body.
_FIRST_BITE = 256
_LARGEST_BITE = 1024 * 1024
# Sign-in, apps, keys, members and the dashboard's forms take a few fields: a
# bigger body there only feeds the JSON parser and the validator (a million
# unknown keys made a million errors), so it is refused before either sees it.
# The data routes (spans, templates and datasets, scores, experiments) take
# AGENTMARK_MAX_BODY_BYTES.
SMALL_BODY_BYTES = 64 * 1024
SMALL_BODY_PATHS = ("/v1/auth/", "/v1/apps", "/v1/api-keys", "/v1/members")


def body_limit(path: str, upload_limit: int) -> int:
    """The most bytes a request to ``path`` may send."""
    if path.startswith(SMALL_BODY_PATHS) or not path.startswith("/v1/"):
        return min(upload_limit, SMALL_BODY_BYTES)
    return upload_limit


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
    gzip = encoding != "deflate"
    if len(raw) <= INLINE_INFLATE_BYTES:
        return inflate(raw, limit, gzip=gzip)
    # Inflating megabytes takes tens of milliseconds: not on the event loop.
    return await to_thread.run_sync(lambda: inflate(raw, limit, gzip=gzip))


def inflate(data: bytes, limit: int, *, gzip: bool = True) -> bytes:
    """Every gzip member (or the one zlib stream) whole, checked to its end.

    Linear in the body: each member reads its input from a view of the body,
    never from a copy of everything after it.
    """
    out = bytearray()
    body = memoryview(data)
    start = 0
    members = 0
    while start < len(body):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise BadRequest(
                f"Body has more than {MAX_GZIP_MEMBERS} gzip members", code="invalid_encoding"
            )
        start = _inflate_member(body, start, out, limit, gzip=gzip)
        if not gzip and start < len(body):
            raise BadRequest("Body has data after its deflate stream", code="invalid_encoding")
    if members == 0:
        raise BadRequest("Body is not valid gzip: it is empty", code="invalid_encoding")
    return bytes(out)


def _inflate_member(body: memoryview, start: int, out: bytearray, limit: int, *, gzip: bool) -> int:
    """Inflates the member at ``start`` onto ``out``; returns where the next one starts."""
    decompressor = zlib.decompressobj(wbits=31 if gzip else 15)
    bite = _FIRST_BITE
    position = start
    while not decompressor.eof:
        if position >= len(body):
            # Without its end (and checksum) a cut-off body could still parse, shorter.
            raise BadRequest("Body is not valid gzip: it ends early", code="invalid_encoding")
        piece = body[position : position + bite]
        position += len(piece)
        bite = min(bite * 2, _LARGEST_BITE)
        try:
            # max_length stops inflation one byte past the limit: a bomb costs us `limit` bytes.
            out += decompressor.decompress(piece, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest("Body is not valid gzip", code="invalid_encoding") from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLarge(f"Request body inflates to more than {limit} bytes")
    return position - len(decompressor.unused_data)


class BodyLimitMiddleware:
    """Refuses any request whose (compressed) body exceeds its route's limit, before a
    handler runs: ``limit`` on the data routes, ``SMALL_BODY_BYTES`` on the rest."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.limit)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit or declared < 0:
                    await _too_large(send, limit)
                    return
        seen = 0

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
