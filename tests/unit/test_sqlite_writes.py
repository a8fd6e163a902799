"""Writers of one SQLite file queue on a lock in the process, held as SQLite's own is."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agentmark_gateway.db.sqlite_writes import QueuedWriterConnection


def connect(path: Path, timeout: float = 5.0) -> QueuedWriterConnection:
    connection = sqlite3.connect(
        path, timeout=timeout, factory=QueuedWriterConnection, check_same_thread=False
    )
    assert isinstance(connection, QueuedWriterConnection)
    return connection


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "queue.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    return path


def in_thread(work) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # handed to the test
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def insert_and_commit(connection: sqlite3.Connection, n: int) -> None:
    connection.execute("INSERT INTO t VALUES (?)", (n,))
    connection.commit()


def test_a_second_writer_waits_for_the_first_to_commit_then_writes(db):
    first, second = connect(db), connect(db)
    first.execute("INSERT INTO t VALUES (1)")
    thread, outcome = in_thread(lambda: insert_and_commit(second, 2))
    time.sleep(0.3)
    assert thread.is_alive(), "the second writer went ahead while the first held the lock"
    first.commit()
    committed_at = time.monotonic()
    thread.join(5)
    assert "error" not in outcome
    assert outcome["at"] >= committed_at
    assert sorted(n for (n,) in first.execute("SELECT n FROM t")) == [1, 2]


def test_a_writer_waits_no_longer_than_its_timeout_and_says_the_database_is_locked(db):
    first, second = connect(db), connect(db, timeout=0.2)
    first.execute("INSERT INTO t VALUES (1)")
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.execute("INSERT INTO t VALUES (2)")
    assert 0.15 < time.monotonic() - started < 2
    first.rollback()
    insert_and_commit(second, 3)


def test_readers_are_not_held_up_by_a_writer(db):
    writer, reader = connect(db), connect(db, timeout=0.1)
    writer.execute("INSERT INTO t VALUES (1)")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.commit()
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (1,)


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_ending_the_transaction_lets_the_next_writer_in(db, end):
    first, second = connect(db), connect(db, timeout=0.2)
    first.execute("INSERT INTO t VALUES (1)")
    getattr(first, end)()
    insert_and_commit(second, 2)


def test_a_statement_outside_a_transaction_does_not_keep_the_lock(db):
    first, second = connect(db), connect(db, timeout=0.2)
    first.isolation_level = None  # autocommit: each statement is its own transaction
    first.execute("INSERT INTO t VALUES (1)")
    first.execute("CREATE TABLE u (n INTEGER)")
    insert_and_commit(second, 2)


def test_a_failed_write_keeps_the_lock_until_the_rollback_as_sqlite_does(db):
    first, second = connect(db), connect(db, timeout=0.2)
    first.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        first.execute("INSERT INTO missing VALUES (1)")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.execute("INSERT INTO t VALUES (2)")
    first.rollback()
    insert_and_commit(second, 2)


def test_a_connection_dropped_without_closing_gives_the_lock_back(db):
    first = connect(db)
    first.execute("INSERT INTO t VALUES (1)")
    del first
    gc.collect()
    insert_and_commit(connect(db, timeout=0.2), 2)


def test_writers_of_different_files_do_not_wait_for_each_other(db, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
    holding = connect(db)
    holding.execute("INSERT INTO t VALUES (1)")
    insert_and_commit(connect(other, timeout=0.2), 2)
    holding.rollback()


def test_the_gateways_sqlite_engine_opens_queued_writer_connections(tmp_path):
    from agentmark_gateway.db.engine import make_engine

    async def driver_connection_type() -> type:
        engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
        try:
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                return type(raw.driver_connection._conn)
        finally:
            await engine.dispose()

    assert asyncio.run(driver_connection_type()) is QueuedWriterConnection


def test_two_spellings_of_one_file_share_one_queue(db, monkeypatch):
    monkeypatch.chdir(db.parent)
    absolute, relative = connect(db), connect(Path(db.name))
    assert absolute._holder is not None and relative._holder is not None
    assert absolute._holder.lock is relative._holder.lock
