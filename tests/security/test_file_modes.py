"""The data folder is 0700 and the SQLite files 0600, whatever the umask.

They hold password hashes, key digests and every app's spans: another local
user must not read them.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.settings import Settings
from tests.conftest import Admin, add_user


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _serve_and_write(settings: Settings) -> None:
    """Start a gateway on ``settings`` and make it write (a user, an app, a key)."""
    with TestClient(create_app(settings)) as client:
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        admin.create_key(admin.create_app("shop"), role="sdk")
        # While the gateway runs, SQLite's WAL companions exist: check them now.
        database = settings.data_dir / "gateway.db"
        for companion in ("gateway.db-wal", "gateway.db-shm"):
            assert mode(settings.data_dir / companion) == 0o600, companion
        assert mode(database) == 0o600


def test_a_new_data_folder_and_its_database_are_private(tmp_path, usual_umask):
    settings = Settings(data_dir=tmp_path / "data")  # the default SQLite file, a made pepper
    migrate.upgrade(settings.resolved_database_url)
    _serve_and_write(settings)
    assert mode(settings.data_dir) == 0o700
    for name in os.listdir(settings.data_dir):
        assert mode(settings.data_dir / name) == 0o600, name


def test_looser_modes_found_at_start_are_tightened_with_a_log_line(tmp_path, usual_umask, caplog):
    settings = Settings(data_dir=tmp_path / "data")
    migrate.upgrade(settings.resolved_database_url)
    database = settings.data_dir / "gateway.db"
    # As a version without this control, or a copy made by hand, would have left them.
    settings.data_dir.chmod(0o755)
    database.chmod(0o644)
    stray_wal = settings.data_dir / "gateway.db-wal"
    stray_wal.touch(mode=0o644)
    with caplog.at_level(logging.WARNING, logger="agentmark_gateway.filemodes"):
        _serve_and_write(settings)
    assert mode(settings.data_dir) == 0o700
    assert mode(database) == 0o600
    tightened = [r.getMessage() for r in caplog.records if "tightened" in r.getMessage()]
    assert any(str(settings.data_dir) in message for message in tightened)
    assert any(str(database) in message for message in tightened)
