"""The published ``agentmark-sdk`` posts scores to a running gateway, unchanged (DESIGN 8)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from agentmark_sdk import AgentMarkSDK

from agentmark_gateway.app import create_app

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def base_url(settings, client) -> Iterator[str]:
    """A real server on a free port over the same database as ``client``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def sdk_key(admin):
    return admin.create_key(admin.create_app(), role="sdk")


@pytest.fixture
def sdk(base_url, sdk_key):
    return AgentMarkSDK(
        api_key=sdk_key["plaintext_key"], app_id=sdk_key["app_id"], base_url=base_url
    )


def test_score_sync_from_the_sdk_is_stored_and_returned(sdk, sdk_key, admin, client):
    data = sdk.score_sync(
        resource_id=TRACE, name="accuracy", score=0.95, label="good", reason="matched"
    )
    assert data["id"]
    assert (data["resource_id"], data["name"], data["score"]) == (TRACE, "accuracy", 0.95)
    assert (data["label"], data["reason"], data["source"]) == ("good", "matched", "api")

    reader = admin.create_key(sdk_key["app_id"], role="read-only")
    stored = client.get(
        f"/v1/scores/{data['id']}",
        headers={"Authorization": reader["plaintext_key"], "X-Agentmark-App-Id": reader["app_id"]},
    )
    assert stored.status_code == 200
    assert stored.json()["data"]["score"] == 0.95


def test_async_score_from_the_sdk_keeps_type_and_source(sdk):
    data = asyncio.run(
        sdk.score(resource_id=TRACE, name="tone", score=1, type="boolean", source="annotation")
    )
    assert (data["type"], data["source"], data["score"]) == ("boolean", "annotation", 1.0)


def test_the_sdk_raises_the_error_body_of_a_refused_score(sdk):
    with pytest.raises(Exception) as raised:
        sdk.score_sync(resource_id=TRACE, name="", score=1)
    assert raised.value.args[0]["code"] == "invalid_request_body"
