"""GET /v1/templates answers kept per process (templates/cache.py), sent by KeyGate.

A cached answer is the very answer the handler gave; it is sent only after the
key and its permissions were checked as always; publishing, deleting and app
deletion take effect on the next request.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentmark_gateway.settings import Settings

PATH = "support/greeting.prompt.mdx"
AST = {"type": "root", "children": [{"type": "text", "value": "Hello"}]}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No background polling of the change feed: it would re-apply this process's own
    # publish at a moment of its choosing and empty the cache under the test. The test
    # that needs the feed polls it itself.
    return settings.model_copy(update={"invalidation_poll_seconds": 3600.0})


@pytest.fixture
def reader(admin, client, key_headers) -> dict[str, Any]:
    app_id = admin.create_app()
    writer = key_headers(admin.create_key(app_id, role="full-access"))
    put = client.put("/v1/templates", params={"path": PATH}, json=AST, headers=writer)
    assert put.status_code == 201, put.text
    key = admin.create_key(app_id, role="sdk")
    return {"app_id": app_id, "key": key, "headers": key_headers(key), "writer": writer}


def _sessions_opened(client) -> list[int]:
    """Counts database sessions from now on (a cache hit opens none)."""
    gateway = client.app.state.gateway
    opened: list[int] = []
    real = gateway.sessionmaker
    gateway.sessionmaker = lambda *a, **k: opened.append(1) or real(*a, **k)
    return opened


def _get(client, headers, **params):
    return client.get("/v1/templates", params={"path": PATH, **params}, headers=headers)


def test_the_second_read_is_the_same_answer_without_the_database(client, reader):
    first = _get(client, reader["headers"])
    assert first.status_code == 200 and first.json() == {"data": AST}
    opened = _sessions_opened(client)
    second = _get(client, reader["headers"])
    assert opened == []
    assert second.status_code == 200
    assert second.content == first.content
    # The same headers too, but for the request id that each answer has its own of.
    assert _but_request_id(second.headers) == _but_request_id(first.headers)


def _but_request_id(headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers.items() if name != "x-request-id"]


def test_publishing_and_deleting_take_effect_on_the_next_read(client, reader):
    assert _get(client, reader["headers"]).json() == {"data": AST}
    changed = {**AST, "children": []}
    put = client.put("/v1/templates", params={"path": PATH}, json=changed, headers=reader["writer"])
    assert put.status_code == 200
    assert _get(client, reader["headers"]).json() == {"data": changed}
    deleted = client.delete("/v1/templates", params={"path": PATH}, headers=reader["writer"])
    assert deleted.status_code == 204
    assert _get(client, reader["headers"]).status_code == 404


def test_a_deleted_key_or_a_lost_permission_is_refused_on_a_cached_answer(admin, client, reader):
    assert _get(client, reader["headers"]).status_code == 200
    key_id = reader["key"]["id"]
    edited = client.patch(
        f"/v1/api-keys/{key_id}", json={"permissions": ["trace.read"]}, headers=admin.headers
    )
    assert edited.status_code == 200, edited.text
    refused = _get(client, reader["headers"])
    assert refused.status_code == 403
    assert refused.json()["error"]["required_permission"] == "template.read"
    assert client.delete(f"/v1/api-keys/{key_id}", headers=admin.headers).status_code == 204
    assert _get(client, reader["headers"]).status_code == 401


def test_another_app_never_gets_the_cached_answer(admin, client, key_headers, reader):
    assert _get(client, reader["headers"]).status_code == 200
    other = key_headers(admin.create_key(admin.create_app(), role="sdk"))
    assert _get(client, other).status_code == 404
    # The right key with the other app's id is no key at all.
    mixed = {**reader["headers"], "X-Agentmark-App-Id": other["X-Agentmark-App-Id"]}
    assert _get(client, mixed).status_code == 401


def test_a_different_query_is_decided_by_the_route_again(client, reader):
    assert _get(client, reader["headers"]).status_code == 200
    unknown = _get(client, reader["headers"], pathh="x")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "invalid_query_params"


def test_deleting_the_app_forgets_its_answers(admin, client, reader):
    assert _get(client, reader["headers"]).status_code == 200
    gateway = client.app.state.gateway
    assert len(gateway.templates) == 1
    assert client.delete(f"/v1/apps/{reader['app_id']}", headers=admin.headers).status_code == 204
    assert len(gateway.templates) == 0
    assert _get(client, reader["headers"]).status_code == 401


def test_a_template_change_in_another_process_is_announced(client, reader):
    """Publishing writes a key_changes row of kind "templates"; polling applies it."""
    from agentmark_gateway.db.engine import make_sessionmaker
    from agentmark_gateway.templates import service

    gateway = client.app.state.gateway
    assert _get(client, reader["headers"]).status_code == 200
    assert len(gateway.templates) == 1

    async def publish_elsewhere() -> None:
        # Straight through the service, as another process (or the CLI) would: its
        # sessions do not apply changes to this process's caches as they commit.
        async with make_sessionmaker(gateway.engine)() as session:
            await service.put_template(
                session, app_id=reader["app_id"], path=PATH, content={**AST, "children": []}
            )
        assert len(gateway.templates) == 1
        await gateway.changes.poll()

    client.portal.call(publish_elsewhere)
    assert len(gateway.templates) == 0
    assert _get(client, reader["headers"]).json() == {"data": {**AST, "children": []}}


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_per_key": 3})


def test_cached_answers_are_counted_by_the_rate_limiter(limited_settings, reader_factory):
    client, headers = reader_factory(limited_settings)
    # A stopped clock, so that the four requests share one rate-limit window.
    client.app.state.gateway.limiter.clock = lambda: 1_800_000_020.0
    answers = [_get(client, headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].headers["Retry-After"]


@pytest.fixture
def reader_factory():
    from fastapi.testclient import TestClient

    from agentmark_gateway.app import create_app
    from tests.conftest import Admin, add_user

    opened: list[TestClient] = []

    def make(settings: Settings):
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        app_id = admin.create_app()
        writer = admin.create_key(app_id, role="full-access", rate_limit_per_minute=1000)
        writer_headers = {"Authorization": writer["plaintext_key"], "X-Agentmark-App-Id": app_id}
        put = client.put("/v1/templates", params={"path": PATH}, json=AST, headers=writer_headers)
        assert put.status_code == 201, put.text
        key = admin.create_key(app_id, role="sdk")
        return client, {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": app_id}

    yield make
    for client in opened:
        client.__exit__(None, None, None)
