"""A database that turns read-only for a while, then writable again.

SQLite: the files are made read-only under a gateway that runs as an ordinary
user (as the systemd unit does; root writes through any mode). A write that
meets them gets 503 with Retry-After (one on a connection opened before, as the
group-commit writer's usually is, still goes through). A connection SQLite
opened then is read-only for good, so the gateway must not keep it: once the
files are writable again, every write goes through within a couple of seconds,
without a restart.

PostgreSQL: a pooled connection whose session turned read-only (as one to a
server that became a standby) is discarded after the write it refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine
from tests.resilience.gateways import Admin, GatewayProcess, add_owner, key_headers
from tests.resilience.traffic import batch, new_marker

pytestmark = pytest.mark.slow

UNPRIVILEGED = ("nobody", "nogroup")
WRITERS = 8
READ_ONLY_SECONDS = 3.0
# How long writes may keep failing once the files are writable again.
RECOVERY_SECONDS = 2.0


def _drop_privileges() -> Sequence[str]:
    """A command prefix that runs the server as a user file modes apply to."""
    if os.geteuid() != 0:
        return ()
    user, group = UNPRIVILEGED
    prefix = ("setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups")
    try:
        # The user must also be able to read the installed gateway.
        check = [*prefix, sys.executable, "-c", "import agentmark_gateway.app"]
        subprocess.run(check, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(
            f"cannot run the gateway as {user} ({exc}): as root, read-only files would not "
            "stop a write, so this test needs an unprivileged server"
        )
    return prefix


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder the unprivileged user owns, outside root's private pytest folder."""
    path = Path(tempfile.mkdtemp(prefix="agw-readonly-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _hand_over(path: Path) -> None:
    if os.geteuid() != 0:
        return
    user, group = UNPRIVILEGED
    for item in [path, *path.rglob("*")]:
        shutil.chown(item, user, group)


def _database_files(path: Path) -> list[Path]:
    return [path / name for name in ("gateway.db", "gateway.db-wal", "gateway.db-shm")]


def _set_mode(files: list[Path], mode: int) -> None:
    for file in files:
        if file.exists():
            file.chmod(mode)


def _write(base: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/v1/traces", content=batch(new_marker()), headers=headers, timeout=30)


def _writes(base: str, headers: dict[str, str], seconds: float) -> list[httpx.Response]:
    """``WRITERS`` clients writing without pause for ``seconds``."""
    deadline = time.monotonic() + seconds

    def one_client() -> list[httpx.Response]:
        answers = []
        while time.monotonic() < deadline:
            answers.append(_write(base, headers))
        return answers

    with ThreadPoolExecutor(WRITERS) as pool:
        runs = [pool.submit(one_client) for _ in range(WRITERS)]
        return [answer for run in runs for answer in run.result()]


def test_writes_recover_by_themselves_once_a_read_only_database_is_writable_again(data_dir):
    run_as = _drop_privileges()
    url = f"sqlite:///{data_dir / 'gateway.db'}"
    migrate.upgrade(url)
    add_owner(url)
    _hand_over(data_dir)
    server = GatewayProcess(url, data_dir, run_as=run_as)
    try:
        server.wait_ready()
        admin = Admin.sign_in(server.base)
        key = admin.create_key(admin.create_app(), role="sdk")
        headers = {**key_headers(key), "Content-Type": "application/json"}
        assert _write(server.base, headers).status_code == 200, server.log()

        files = _database_files(data_dir)
        _set_mode(files, 0o444)
        try:
            during = _writes(server.base, headers, READ_ONLY_SECONDS)
        finally:
            _set_mode(files, 0o644)
        _writes(server.base, headers, RECOVERY_SECONDS)
        after = _writes(server.base, headers, 2.0)
    finally:
        server.stop()

    assert during, "no write was answered while the database was read-only"
    refused = [answer for answer in during if answer.status_code != 200]
    assert {answer.status_code for answer in refused} <= {503}, server.log()
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in refused)
    assert after, "no write was answered after the database was writable again"
    statuses = sorted({answer.status_code for answer in after})
    assert statuses == [200], f"{len(after)} writes once writable: {statuses}\n{server.log()}"


def _refused_then_written(url: str, turn_read_only: str) -> DBAPIError:
    """The pool's one connection turned read-only: a write on it is refused, and the
    next write, on a connection the pool had to open anew, goes through."""
    write = text("INSERT INTO key_changes (kind, created_at) VALUES ('keys', CURRENT_TIMESTAMP)")

    async def scenario() -> DBAPIError:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                await conn.execute(text(turn_read_only))
                await conn.commit()
            with pytest.raises(DBAPIError) as refused:
                async with engine.begin() as conn:
                    await conn.execute(write)
            async with engine.begin() as conn:
                await conn.execute(write)
        finally:
            await engine.dispose()
        return refused.value

    return asyncio.run(scenario())


def test_a_sqlite_connection_that_turned_read_only_is_discarded_after_its_refusal(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate.upgrade(url)
    refused = _refused_then_written(url, "PRAGMA query_only = ON")

    assert "readonly" in str(refused.orig)
    assert refused.connection_invalidated  # which the gateway answers with 503


def test_a_postgres_connection_that_turned_read_only_is_discarded_after_its_refusal(pg_url):
    # As one to a server that became a standby after a failover.
    refused = _refused_then_written(pg_url, "SET SESSION default_transaction_read_only = on")

    assert getattr(refused.orig, "sqlstate", None) == "25006"
    assert refused.connection_invalidated
