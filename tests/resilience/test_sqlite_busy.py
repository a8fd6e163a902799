"""SQLite busy: another connection holds the write lock while spans arrive.

The gateway waits for the lock (SQLite's busy_timeout, i.e.
``AGENTMARK_DATABASE_TIMEOUT_SECONDS``), so a lock released in time costs only
the wait; past the timeout the answer is 503 ``service_unavailable`` with
Retry-After and nothing of the batch is stored; once the lock is gone the same
batch goes through.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER, Admin, add_user
from tests.resilience.traffic import (
    SPANS_PER_BATCH,
    batch,
    new_marker,
    stored_per_batch_sqlite,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    path = tmp_path / "busy.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


def gateway(sqlite_file: str, tmp_path: Path, timeout: float) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{sqlite_file}",
        key_pepper=PEPPER,
        database_timeout_seconds=timeout,
    )
    return TestClient(create_app(settings))


def sdk_headers(client: TestClient) -> tuple[str, dict[str, str]]:
    admin = Admin(client, add_user(client, "owner@example.com", "owner"))
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    return app_id, {
        "Authorization": key["plaintext_key"],
        "X-Agentmark-App-Id": app_id,
        "Content-Type": "application/json",
    }


@contextmanager
def write_lock(path: str) -> Iterator[sqlite3.Connection]:
    """Another connection's ``BEGIN IMMEDIATE``: it holds the one write lock until it ends."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def test_an_ingest_waits_for_a_write_lock_released_within_the_timeout(sqlite_file, tmp_path):
    with gateway(sqlite_file, tmp_path, timeout=5) as client:
        app_id, headers = sdk_headers(client)
        marker = new_marker()
        with write_lock(sqlite_file) as lock:
            releaser = threading.Timer(0.8, lambda: lock.execute("ROLLBACK"))
            releaser.start()
            started = time.monotonic()
            response = client.post("/v1/traces", content=batch(marker), headers=headers)
            waited = time.monotonic() - started
            releaser.join()

    assert response.status_code == 200, response.text
    assert response.json()["data"]["accepted_spans"] == SPANS_PER_BATCH
    assert waited >= 0.7  # it waited for the lock rather than failing at once
    assert stored_per_batch_sqlite(sqlite_file, app_id)[marker] == SPANS_PER_BATCH


def test_an_ingest_past_the_lock_timeout_gets_503_and_goes_through_once_the_lock_is_gone(
    sqlite_file, tmp_path
):
    with gateway(sqlite_file, tmp_path, timeout=0.5) as client:
        app_id, headers = sdk_headers(client)
        marker = new_marker()
        body = batch(marker)
        with write_lock(sqlite_file):
            started = time.monotonic()
            refused = client.post("/v1/traces", content=body, headers=headers)
            waited = time.monotonic() - started
            # Reads do not need the write lock (WAL): they go on meanwhile.
            assert client.get("/health").status_code == 200
        assert stored_per_batch_sqlite(sqlite_file, app_id)[marker] == 0
        accepted = client.post("/v1/traces", content=body, headers=headers)

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert 0.4 <= waited < 3, waited
    assert accepted.status_code == 200, accepted.text
    assert stored_per_batch_sqlite(sqlite_file, app_id)[marker] == SPANS_PER_BATCH
