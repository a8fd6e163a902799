"""Connections that failed in a way only a new connection cures are discarded, not pooled.

SQLite opens a database read-only when its file is read-only at that moment, and
the connection stays so after the file is writable again: every write on it says
"attempt to write a readonly database", for good. After an I/O error, a file
that could not be opened or one that read as malformed, a connection is as
doubtful. Kept in the pool, such a connection would fail each request that
draws it until a restart. Reported as a disconnect instead, SQLAlchemy closes
it and renews every connection the pool opened before it, so writes recover by
themselves once the disk does; the request that met it still gets 503.

On PostgreSQL the same goes for the classes of a connection or server that cannot
go on: 08 (connection), 57P (shutting down), 58 (system and I/O errors), and
25006 (a read-only transaction: the server became a standby after a failover).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

# Primary result codes; the extended ones (SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE,
# ...) carry them in their low byte.
_SQLITE_BROKEN = frozenset(
    (
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_NOTADB,
    )
)
_POSTGRES_BROKEN_PREFIXES = ("08", "57P", "58", "25006")


def connection_is_broken(error: BaseException) -> bool:
    """Whether ``error`` (a driver's exception) leaves its connection unfit for reuse."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_BROKEN
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_POSTGRES_BROKEN_PREFIXES)


def discard_broken_connections(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and connection_is_broken(context.original_exception):
            context.is_disconnect = True
