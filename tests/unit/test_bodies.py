import gzip

import pytest

from agentmark_gateway.bodies import inflate
from agentmark_gateway.errors import BadRequest, PayloadTooLarge


def test_inflate_returns_the_original_bytes():
    assert inflate(gzip.compress(b"hello" * 100), 10_000) == b"hello" * 100


def test_a_gzip_bomb_is_refused_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        inflate(bomb, 1024 * 1024)


def test_garbage_is_not_gzip():
    with pytest.raises(BadRequest):
        inflate(b"definitely not gzip", 1000)
