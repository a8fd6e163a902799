"""One writer at a time per SQLite file within a process, queued on a lock.

SQLite lets one connection write at a time. Left to itself, a connection that
finds the write lock taken waits in SQLite's busy handler, which sleeps in
steps of up to 100 ms and retries: under concurrent writes (32 clients posting
scores) most of a request's time goes to those sleeps, and the unlucky ones
wait seconds. Here each connection of the process first takes a lock of its
own for the database file and blocks on it, waking the moment the writer
before it commits.

The lock is held exactly while SQLite's own write lock would be: from a
transaction's first write statement to its commit or rollback (or, for a
statement outside any transaction, until it returns). So it can never be held
across anything SQLite's lock is not already held across, and adds no wait
that could not already happen. Writers in other processes still meet in
SQLite's busy handler.

The waiting happens in the connection's own thread (aiosqlite runs each
connection in one), never on the event loop. It is bounded by the same
timeout as SQLite's busy handler and ends the same way: "database is locked",
which the gateway answers with 503.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from typing import Any, Self

# Statements that take no write lock by themselves (a deferred BEGIN, SAVEPOINT)
# or end a transaction; everything else (INSERT, UPDATE, DELETE, DDL, ...) writes.
_NOT_WRITES = frozenset(
    ("select", "begin", "savepoint", "release", "commit", "end", "rollback", "pragma", "explain")
)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(database: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(database, threading.Lock())


def _writes(sql: str) -> bool:
    head = sql.lstrip(" \t\r\n(").split(None, 1)
    return bool(head) and head[0].lower() not in _NOT_WRITES


class _Holder:
    """Whether a connection holds its file's lock; outlives the connection for cleanup."""

    __slots__ = ("held", "lock")

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.held = False

    def release(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


class QueuedWriterConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` (pass as ``factory=``) whose writers queue on a lock."""

    def __init__(self, database: Any, timeout: float = 5.0, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, timeout, *args, **kwargs)
        self._timeout = timeout
        name = str(database)
        # An in-memory database has one connection: nobody to queue behind.
        shared = name not in ("", ":memory:") and "mode=memory" not in name
        if shared and not kwargs.get("uri"):
            name = os.path.realpath(name)  # one file, one lock, however it is spelled
        self._holder = _Holder(_lock_for(name)) if shared else None
        if self._holder is not None:
            # A connection dropped without close() must not keep the lock.
            weakref.finalize(self, self._holder.release)

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _QueuedWriterCursor)

    # The C shortcuts would bypass the cursor's checks: go through it.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, seq_of_parameters)

    def before(self, sql: str) -> None:
        holder = self._holder
        if holder is None or holder.held or not _writes(sql):
            return
        if not holder.lock.acquire(timeout=self._timeout):
            raise sqlite3.OperationalError("database is locked")
        holder.held = True

    def after(self) -> None:
        # A statement outside a transaction is committed once it returns.
        if self._holder is not None and self._holder.held and not self.in_transaction:
            self._holder.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.after()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.after()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._holder is not None:
                self._holder.release()


class _QueuedWriterCursor(sqlite3.Cursor):
    connection: QueuedWriterConnection

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        self.connection.before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.after()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
        self.connection.before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.after()
