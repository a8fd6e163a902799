"""A request body as a stream of inflated pieces, for uploads parsed as they arrive.

``bodies.read_body`` hands over the whole body. A dataset upload reads it piece
by piece instead, so that a small gzip inflating to millions of lines is refused
at its first line too many, with at most one piece of it in memory at a time.
The limits are those of ``read_body``: ``limit`` bytes before and after inflation,
every gzip member checked to its end, at most ``MAX_GZIP_MEMBERS`` of them.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

from starlette.requests import Request

from agentmark_gateway.bodies import MAX_GZIP_MEMBERS
from agentmark_gateway.errors import BadRequest, PayloadTooLarge

# The most inflated bytes one step hands on: what a parser holds of the body at once.
PIECE_BYTES = 64 * 1024


async def inflated_pieces(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body in pieces of at most ``PIECE_BYTES``, inflated when gzip or deflate."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise BadRequest(f"Unsupported Content-Encoding '{encoding}'", code="unsupported_encoding")
    inflater = None if encoding in ("", "identity") else Inflater(limit, gzip=encoding != "deflate")
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
        if inflater is None:
            for start in range(0, len(chunk), PIECE_BYTES):
                yield chunk[start : start + PIECE_BYTES]
        else:
            for piece in inflater.feed(chunk):
                yield piece
    if inflater is not None:
        inflater.finish()


class Inflater:
    """Inflates gzip members (or one zlib stream) fed in any cut, a bounded piece at a time."""

    def __init__(self, limit: int, *, gzip: bool) -> None:
        self.limit = limit
        self.gzip = gzip
        self.inflated = 0
        self.members = 1
        self._decompressor = self._new()

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj(wbits=31 if self.gzip else 15)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if data and self._decompressor.eof:
                self._next_member()
            try:
                piece = self._decompressor.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                raise BadRequest("Body is not valid gzip", code="invalid_encoding") from exc
            # What max_length held back, or (at a member's end) the bytes after it.
            if self._decompressor.eof:
                data = self._decompressor.unused_data
            else:
                data = self._decompressor.unconsumed_tail
            self.inflated += len(piece)
            if self.inflated > self.limit:
                raise PayloadTooLarge(f"Request body inflates to more than {self.limit} bytes")
            if piece:
                yield piece
            # A full piece may leave output pending inside zlib: ask again, even with no input.
            if not data and (self._decompressor.eof or len(piece) < PIECE_BYTES):
                return

    def _next_member(self) -> None:
        if not self.gzip:
            raise BadRequest("Body has data after its deflate stream", code="invalid_encoding")
        self.members += 1
        if self.members > MAX_GZIP_MEMBERS:
            raise BadRequest(
                f"Body has more than {MAX_GZIP_MEMBERS} gzip members", code="invalid_encoding"
            )
        self._decompressor = self._new()

    def finish(self) -> None:
        """Refuses a body cut off inside a member (it could still parse, shorter)."""
        if not self._decompressor.eof:
            raise BadRequest("Body is not valid gzip: it ends early", code="invalid_encoding")
