"""`db backup` and `db restore` on SQLite files: consistent under writes, guarded, private."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from agentmark_gateway.cli.main import app
from agentmark_gateway.db import backup
from tests.conftest import BACKEND, PEPPER
from tests.fixtures.otlp import payloads

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite files")

runner = CliRunner()
SPANS_PER_BATCH = 20


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Runs the CLI on the data folder ``tmp_path/data`` (its gateway.db)."""
    monkeypatch.delenv("AGENTMARK_DATABASE_URL", raising=False)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result

    return invoke


def path_of(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


def test_a_backup_taken_while_spans_are_ingested_holds_every_acknowledged_batch_whole(
    admin, client, key_headers, settings, tmp_path
):
    headers = key_headers(admin.create_key(admin.create_app(), role="sdk"))
    acknowledged: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def ingest() -> None:
        while not stop.is_set():
            trace_id = payloads.trace_id()
            spans = [payloads.span(trace_id, name=f"s{i}") for i in range(SPANS_PER_BATCH)]
            response = client.post("/v1/traces", json=payloads.request(spans), headers=headers)
            if response.status_code == 200:
                acknowledged.append(trace_id)
            else:
                failures.append(response.text)

    writer = threading.Thread(target=ingest)
    writer.start()
    taken = []
    try:
        for n in range(3):
            time.sleep(0.3)
            before = set(acknowledged)
            file = tmp_path / f"backup-{n}.db"
            backup.backup(settings.resolved_database_url, file)
            taken.append((file, before))
    finally:
        stop.set()
        writer.join()

    assert not failures, failures[:3]
    counts = []
    for file, before in taken:
        assert rows(file, "PRAGMA integrity_check") == [("ok",)]
        traces = rows(
            file,
            "SELECT t.trace_id, t.span_count, count(s.id) FROM traces t "
            "JOIN spans s ON s.app_id = t.app_id AND s.trace_id = t.trace_id GROUP BY t.trace_id",
        )
        # No batch by halves: each trace has its spans, and its rollup counts them.
        assert {(count, stored) for _, count, stored in traces} == {
            (SPANS_PER_BATCH, SPANS_PER_BATCH)
        }
        # Everything acknowledged before the backup began is in it.
        assert before <= {trace_id for trace_id, _, _ in traces}
        counts.append(len(traces))
    assert counts[0] < counts[1] < counts[2], counts  # the writes went on meanwhile


def test_a_restore_is_refused_while_a_gateway_uses_the_database(client, settings, tmp_path):
    file = tmp_path / "backup.db"
    backup.backup(settings.resolved_database_url, file)
    target = path_of(settings.resolved_database_url)
    before = target.stat().st_ino

    # The client fixture's gateway is running on the database.
    with pytest.raises(backup.BackupError, match="is in use: stop the gateway"):
        backup.restore(settings.resolved_database_url, file, force=True)

    assert target.stat().st_ino == before
    assert client.get("/ready").status_code == 200


def test_backup_writes_a_private_file_and_replaces_one_only_with_force(cli, tmp_path):
    cli("db", "upgrade")
    file = tmp_path / "gateway.backup"
    file.write_text("precious")

    refused = cli("db", "backup", str(file), ok=False)
    assert "exists: pass --force to replace it" in refused.output
    assert file.read_text() == "precious"

    done = cli("db", "backup", str(file), "--force")
    assert "backed up the database" in done.output
    assert "AGENTMARK_KEY_PEPPER" in done.output and PEPPER not in done.output
    assert file.stat().st_mode & 0o777 == 0o600
    assert rows(file, "SELECT count(*) FROM alembic_version") == [(1,)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_a_restore_into_a_new_folder_is_private_and_into_a_full_one_needs_force(cli, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    cli("db", "upgrade")
    shutil.move(tmp_path / "data" / "gateway.db", source / "gateway.db")
    shutil.rmtree(tmp_path / "data")
    file = tmp_path / "gateway.backup"
    with closing(sqlite3.connect(source / "gateway.db")) as db:
        db.execute("CREATE TABLE marker (text TEXT)")
        db.execute("INSERT INTO marker VALUES ('restored')")
        db.commit()
    backup.backup(f"sqlite:///{source / 'gateway.db'}", file)

    cli("db", "restore", str(file))
    target = tmp_path / "data" / "gateway.db"
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert target.stat().st_mode & 0o777 == 0o600
    assert rows(target, "SELECT text FROM marker") == [("restored",)]

    refused = cli("db", "restore", str(file), ok=False)
    assert "already holds a database: pass --force" in refused.output
    cli("db", "restore", str(file), "--force")
    assert rows(target, "SELECT text FROM marker") == [("restored",)]


def test_a_restore_leaves_no_stale_wal_of_an_old_database_to_be_replayed(cli, tmp_path):
    """A crashed gateway's -wal and -shm, left without their database, must not be
    applied to the restored one when it is next opened."""
    cli("db", "upgrade")
    data = tmp_path / "data"
    file = tmp_path / "gateway.backup"
    backup.backup(f"sqlite:///{data / 'gateway.db'}", file)
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    live = sqlite3.connect(data / "gateway.db")
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("PRAGMA wal_autocheckpoint=0")
    live.execute("CREATE TABLE marker (text TEXT)")
    live.execute("INSERT INTO marker VALUES ('stale')")
    live.commit()
    for suffix in ("-wal", "-shm"):  # copied while open: as a crash leaves them
        shutil.copy(data / f"gateway.db{suffix}", crashed / f"gateway.db{suffix}")
    live.close()
    shutil.rmtree(data)
    shutil.copytree(crashed, data)

    cli("db", "restore", str(file))

    target = data / "gateway.db"
    assert rows(target, "PRAGMA integrity_check") == [("ok",)]
    assert rows(target, "SELECT name FROM sqlite_master WHERE name = 'marker'") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no backup at"),
        (b"just some text, not a database", "is not a SQLite database"),
        ("empty-sqlite", "is not a gateway database"),
        ("newer", "made by a newer version of the gateway"),
        ("truncated", "is damaged"),
    ],
)
def test_a_restore_refuses_a_missing_foreign_or_damaged_file_and_changes_nothing(
    cli, tmp_path, content, message
):
    cli("db", "upgrade")
    database = tmp_path / "data" / "gateway.db"
    file = tmp_path / "gateway.backup"
    if isinstance(content, bytes):
        file.write_bytes(content)
    elif content == "empty-sqlite":
        with closing(sqlite3.connect(file)) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
    elif content == "newer":
        backup.backup(f"sqlite:///{database}", file)
        with closing(sqlite3.connect(file)) as db:
            db.execute("UPDATE alembic_version SET version_num = '29990101_0099'")
            db.commit()
    elif content == "truncated":
        with closing(sqlite3.connect(tmp_path / "big.db")) as db:
            db.execute("CREATE TABLE alembic_version (version_num TEXT)")
            db.execute("CREATE TABLE filler (text TEXT)")
            db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 2000)
            db.commit()
        data = (tmp_path / "big.db").read_bytes()
        file.write_bytes(data[: len(data) // 2])
    before = database.read_bytes()

    refused = cli("db", "restore", str(file), "--force", ok=False)

    assert message in refused.output
    assert database.read_bytes() == before
