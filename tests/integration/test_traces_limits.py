"""Bounded ingest bodies: past the limit, compressed or inflated, is a 413 and stores nothing."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from tests.fixtures.otlp import payloads

LIMIT = 256 * 1024


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_body_bytes": LIMIT})


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


def _big_request(trace_id: str, size: int) -> bytes:
    span = payloads.span(trace_id, attrs={"agentmark.request.input": "x" * size})
    return json.dumps(payloads.request([span])).encode()


def _stored(client, headers) -> int:
    return client.get("/v1/spans", headers=headers).json()["pagination"]["total"]


def test_a_gzip_bomb_is_refused_without_inflating_it_all(client, headers, monkeypatch):
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    assert len(bomb) < LIMIT
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)

    response = client.post(
        "/v1/traces",
        content=bomb,
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert sum(inflated) <= LIMIT + 1


def test_a_compressed_body_that_inflates_past_the_limit_stores_nothing(client, headers):
    body = gzip.compress(_big_request(payloads.trace_id(), LIMIT + 10))
    assert len(body) < LIMIT
    response = client.post(
        "/v1/traces",
        content=body,
        headers={**headers, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert _stored(client, headers) == 0


def test_a_plain_body_over_the_limit_is_a_413(client, headers):
    response = client.post(
        "/v1/traces",
        content=_big_request(payloads.trace_id(), LIMIT + 10),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert _stored(client, headers) == 0


def test_a_body_just_under_the_limit_is_stored(client, headers):
    response = client.post(
        "/v1/traces",
        content=_big_request(payloads.trace_id(), LIMIT - 4096),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert _stored(client, headers) == 1
