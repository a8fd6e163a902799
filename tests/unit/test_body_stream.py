"""Inflating a body in pieces: the same bytes as at once, in bounded steps, the same refusals."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from agentmark_gateway.body_stream import PIECE_BYTES, Inflater
from agentmark_gateway.errors import BadRequest, PayloadTooLarge

PAYLOAD = os.urandom(50_000) + b"\n" * 2_000_000


def _inflate(body: bytes, *, cut: int, limit: int = 10**8, gzip_: bool = True) -> list[bytes]:
    inflater = Inflater(limit, gzip=gzip_)
    pieces = [p for i in range(0, len(body), cut) for p in inflater.feed(body[i : i + cut])]
    inflater.finish()
    return pieces


@pytest.mark.parametrize("cut", [1, 7, 4096, 10**7])
def test_any_cut_of_the_body_inflates_to_the_same_bytes_in_bounded_pieces(cut):
    body = gzip.compress(PAYLOAD) + gzip.compress(b"second member")
    if cut == 1:
        body = gzip.compress(b"x" * 300_000)  # byte by byte: keep it small
    pieces = _inflate(body, cut=cut)
    expected = b"x" * 300_000 if cut == 1 else PAYLOAD + b"second member"
    assert b"".join(pieces) == expected
    assert max(len(p) for p in pieces) <= PIECE_BYTES
    assert b"".join(_inflate(zlib.compress(PAYLOAD), cut=cut, gzip_=False)) == PAYLOAD


def test_a_bomb_is_413_once_past_the_limit_not_after_inflating_it():
    bomb = gzip.compress(b"\0" * 50_000_000)
    inflater = Inflater(1_000_000, gzip=True)
    inflated = 0
    with pytest.raises(PayloadTooLarge):
        for piece in inflater.feed(bomb):
            inflated += len(piece)
    assert inflated <= 1_000_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (gzip.compress(PAYLOAD)[:-4], "ends early"),
        (b"not gzip at all", "not valid gzip"),
        (gzip.compress(b"") * 100, "gzip members"),
    ],
)
def test_broken_gzip_is_400(body, message):
    with pytest.raises(BadRequest, match=message):
        _inflate(body, cut=4096)


def test_data_after_a_deflate_stream_is_400():
    with pytest.raises(BadRequest, match="after its deflate stream"):
        _inflate(zlib.compress(b"x") + b"more", cut=4096, gzip_=False)
