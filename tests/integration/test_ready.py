"""GET /ready: 200 when the database answers at the current schema, else 503 with Retry-After."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from agentmark_gateway.app import create_app
from agentmark_gateway.db import readiness, revisions
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER


def set_schema_version(client: TestClient, version: str | None) -> None:
    """Writes the database's Alembic revision (None: no row at all)."""
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]

    async def write() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM alembic_version"))
            if version is not None:
                await connection.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version}
                )

    client.portal.call(write)  # type: ignore[union-attr]


@pytest.fixture
def schema(client: TestClient) -> Iterator[None]:
    """Puts the revision back after the test (PostgreSQL's test database is reused)."""
    yield
    set_schema_version(client, revisions.head())


def assert_not_ready(response, why: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert why in error["message"]


def test_ready_when_the_database_answers_at_the_current_schema(client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_not_ready_while_the_schema_is_behind_this_version(client, schema):
    previous = [r for r in sorted(revisions.known()) if r != revisions.head()][-1]
    set_schema_version(client, previous)
    assert_not_ready(client.get("/ready"), "older than this version")
    assert client.get("/health").status_code == 200  # alive all the same

    set_schema_version(client, revisions.head())
    assert client.get("/ready").status_code == 200


def test_not_ready_without_a_schema(client, schema):
    set_schema_version(client, None)
    assert_not_ready(client.get("/ready"), "db upgrade")


def test_ready_at_a_newer_schema_that_a_later_version_migrated_to(client, schema):
    # An upgrade migrates first, then replaces the processes: the old ones serve meanwhile.
    set_schema_version(client, "29990101_0001")
    assert client.get("/ready").status_code == 200


def gateway_on(database_url: str, tmp_path: Path) -> TestClient:
    """A gateway whose database is not there; not started (its start would need it)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_not_ready_when_the_sqlite_file_has_vanished(tmp_path):
    folder = tmp_path / "mounted"
    client = gateway_on(f"sqlite:///{folder / 'gateway.db'}", tmp_path)
    shutil.rmtree(folder)  # its volume went away
    assert_not_ready(client.get("/ready"), "does not answer")


def test_not_ready_when_postgresql_refuses_connections(tmp_path):
    with socket.socket() as taken:
        # Bound but not listening: connections are refused, and no other process
        # can take the port meanwhile.
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        client = gateway_on(f"postgresql://postgres@127.0.0.1:{port}/gateway", tmp_path)
        assert_not_ready(client.get("/ready"), "does not answer")


def test_ready_answers_within_its_bound_when_postgresql_never_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(readiness, "READY_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:
        # Connections complete in the kernel's backlog; nothing ever answers them.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = gateway_on(f"postgresql://postgres@127.0.0.1:{port}/gateway", tmp_path)
        started = time.monotonic()
        response = client.get("/ready")
        elapsed = time.monotonic() - started
    assert_not_ready(response, "does not answer")
    assert elapsed < 3, elapsed  # the engine alone would wait its 10 s connect timeout
