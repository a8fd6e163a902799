"""`db backup` and `db restore` on the leg's database: a restored gateway serves the same.

A gateway is filled through its API, backed up while it serves, and restored into
a new data folder (SQLite) or a new database (PostgreSQL, with pg_dump and
pg_restore) with the same pepper; a gateway started on the copy verifies every
key and reads back every trace, span and score.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.db import backup, revisions
from agentmark_gateway.settings import Settings
from tests.conftest import BACKEND, PEPPER, Admin, _pg_url, pg_database, sign_in
from tests.fixtures.otlp import payloads

PASSWORD = "correct horse battery"


@pytest.fixture
def restored_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a second gateway: a new data folder (and a new, empty PostgreSQL
    database), the same pepper."""
    folder = tmp_path / "restored"
    if BACKEND == "postgresql":
        with pg_database("agw_restored") as name:
            yield Settings(data_dir=folder, database_url=_pg_url(name), key_pepper=PEPPER)
        return
    yield Settings(data_dir=folder, key_pepper=PEPPER)  # gateway.db in the new folder


def fill(admin: Admin, key_headers: Any) -> list[dict[str, Any]]:
    """Two apps, keys of each role, traces and scores, all through the API."""
    keys = []
    for name in ("shop", "support"):
        app_id = admin.create_app(name)
        for role in ("full-access", "read-only", "sdk"):
            keys.append(admin.create_key(app_id, role=role, name=f"{name}-{role}"))
        writer = key_headers(keys[-3])
        for user in ("u-1", "u-2"):
            trace_id, spans = payloads.llm_trace(user_id=user, session_id=f"{name}-s", tags=[name])
            payloads.post(admin.client, writer, spans)
            body = {"resource_id": trace_id, "name": "accuracy", "score": 0.75, "label": user}
            response = admin.client.post("/v1/scores", json=body, headers=writer)
            assert response.status_code == 201, response.text
    return keys


def reads(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything a read-only key sees of its app."""
    seen: dict[str, Any] = {}
    for path in ("/v1/traces", "/v1/spans", "/v1/sessions", "/v1/scores", "/v1/scores/names"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        seen[path] = response.json()
    for trace in seen["/v1/traces"]["data"]:
        response = client.get(f"/v1/traces/{trace['id']}", headers=headers)
        assert response.status_code == 200, response.text
        seen[trace["id"]] = response.json()
    return seen


def test_a_gateway_restored_from_a_backup_verifies_every_key_and_reads_the_same_data(
    admin, client, key_headers, settings, restored_settings, tmp_path
):
    keys = fill(admin, key_headers)
    readers = [key for key in keys if key["role"] == "read-only"]
    before = {key["app_id"]: reads(client, key_headers(key)) for key in readers}
    assert all(len(seen["/v1/traces"]["data"]) == 2 for seen in before.values())
    file = tmp_path / "gateway.backup"

    # Taken while the first gateway serves (its client is still open).
    revision = backup.backup(settings.resolved_database_url, file)
    assert revision == revisions.head()
    assert backup.restore(restored_settings.resolved_database_url, file) == revision

    with TestClient(create_app(restored_settings)) as restored:
        for key in keys:
            response = restored.get("/v1/traces", headers=key_headers(key))
            # An SDK key may not read traces: 403 says it verified all the same.
            assert response.status_code == (403 if key["role"] == "sdk" else 200), response.text
        for key in readers:
            assert reads(restored, key_headers(key)) == before[key["app_id"]]
        token = sign_in(restored, "owner@example.com", PASSWORD)
        apps = restored.get("/v1/apps", headers={"Authorization": f"Bearer {token}"})
        assert sorted(app["name"] for app in apps.json()["data"]) == ["shop", "support"]
        # The copy is a gateway of its own: it takes new data.
        _, spans = payloads.llm_trace()
        payloads.post(restored, key_headers(keys[0]), spans)


@pytest.mark.skipif(BACKEND != "postgresql", reason="pg_dump and pg_restore")
def test_a_postgresql_restore_checks_the_archive_and_replaces_tables_only_with_force(
    settings, tmp_path
):
    url = settings.resolved_database_url  # no gateway runs on it in this test
    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP but not really")
    with pytest.raises(backup.BackupError, match="not a readable pg_dump archive"):
        backup.restore(url, garbage, force=True)

    file = tmp_path / "gateway.dump"
    backup.backup(url, file)
    with pytest.raises(backup.BackupError, match="already holds tables: pass --force"):
        backup.restore(url, file)
    # --clean --if-exists drops the gateway's tables and makes them again from the dump.
    assert backup.restore(url, file, force=True) == revisions.head()


@pytest.mark.skipif(BACKEND != "postgresql", reason="pg_dump and pg_restore")
def test_a_dump_is_private_is_replaced_only_with_force_and_not_restored_under_a_gateway(
    client, settings, tmp_path
):
    file = tmp_path / "gateway.dump"
    backup.backup(settings.resolved_database_url, file)
    assert file.stat().st_mode & 0o777 == 0o600
    listing = subprocess.run(
        ["pg_restore", "--list", str(file)], capture_output=True, text=True, check=True
    )
    assert "TABLE DATA public api_keys" in listing.stdout

    with pytest.raises(backup.BackupError, match="exists: pass --force"):
        backup.backup(settings.resolved_database_url, file)
    backup.backup(settings.resolved_database_url, file, force=True)

    # The leg's gateway (the client fixture) is connected to the database.
    with pytest.raises(backup.BackupError, match="connected to the database: stop the gateway"):
        backup.restore(settings.resolved_database_url, file, force=True)
