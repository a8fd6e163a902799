"""`agentmark-gateway db upgrade` beside another upgrade (or a starting server).

A deploy script upgrading while an operator does, or while `serve` migrates on
start, must not crash on the other's CREATE TABLEs: both wait for one lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from agentmark_gateway.db import migrate
from tests.conftest import _pg_url, pg_database
from tests.resilience.databases import alembic_versions


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A database with no tables at all, as before a deployment's first upgrade."""
    with pg_database("agw_upgrade") as name:
        yield _pg_url(name)


def start_upgrade(database_url: str, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentmark_gateway", "db", "upgrade"],
        env={
            **os.environ,
            "AGENTMARK_DATABASE_URL": database_url,
            "AGENTMARK_DATA_DIR": str(data_dir),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_two_upgrades_at_once_on_a_fresh_database_both_succeed(empty_pg_url, tmp_path):
    runs = [start_upgrade(empty_pg_url, tmp_path / f"op{i}") for i in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "database is up to date" in output, output
    head = ScriptDirectory.from_config(migrate.alembic_config(empty_pg_url)).get_current_head()
    assert alembic_versions(empty_pg_url) == [head]


def test_an_upgrade_of_a_sqlite_file_waits_for_the_one_under_way(tmp_path):
    """SQLite has no advisory lock: ``db upgrade`` and ``serve`` share a lock file."""
    database = tmp_path / "gateway.db"
    url = f"sqlite:///{database}"
    held = os.open(tmp_path / "gateway.db.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)  # another process migrating
    upgrade = threading.Thread(target=migrate.upgrade, args=(url,))
    try:
        upgrade.start()
        upgrade.join(timeout=1.0)
        assert upgrade.is_alive(), "the upgrade ran beside another one"
        assert sqlite_versions(database) == []
    finally:
        os.close(held)
    upgrade.join(timeout=60)
    assert not upgrade.is_alive()
    head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    assert sqlite_versions(database) == [head]


def sqlite_versions(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'")
        if not tables.fetchall():
            return []
        return [row[0] for row in db.execute("SELECT version_num FROM alembic_version")]
