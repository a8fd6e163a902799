"""Engines and sessions: the plain URL a user writes becomes an async driver URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from agentmark_gateway.db.discard import discard_broken_connections
from agentmark_gateway.db.sqlite_writes import QueuedWriterConnection
from agentmark_gateway.filemodes import private_database

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> URL:
    """``sqlite:///x.db`` -> aiosqlite, ``postgresql://`` (or ``postgres://``) -> asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=ASYNC_DRIVERS[backend])


def is_sqlite(url: str) -> bool:
    return async_url(url).get_backend_name() == "sqlite"


def make_engine(
    url: str, *, timeout: float = 10.0, statement_timeout: float | None = None, **kwargs: Any
) -> AsyncEngine:
    """An engine for ``url``; ``timeout`` (seconds) bounds each wait for the database.

    On PostgreSQL it bounds opening a connection (asyncpg waits 60 s by default,
    far longer than a client waits for an answer); on SQLite, how long a write
    waits for another writer's lock. Past it the operation fails and the request
    gets 503 with Retry-After.

    ``statement_timeout`` (PostgreSQL) bounds each statement, the pool's pre-ping
    included: a server that stops answering without closing its connections (a
    frozen host, a network that drops packets) would otherwise hold every request
    that reached it, and even its cancellation, until the server came back. None
    (the command line, migrations) means no limit.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        if target.database and target.database != ":memory:" and not target.query.get("uri"):
            private_database(Path(target.database))
        engine = create_async_engine(
            target,
            connect_args={"timeout": timeout, "factory": QueuedWriterConnection},
            **kwargs,
        )
        _tune_sqlite(engine, busy_timeout_ms=max(1, round(timeout * 1000)))
        discard_broken_connections(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"timeout": timeout, "command_timeout": statement_timeout})
    engine = create_async_engine(target, **kwargs)
    discard_broken_connections(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; busy_timeout makes writers
        # wait for each other (retrying) instead of failing at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit is in
        # the WAL file before it returns, so it survives the process crashing; only an
        # OS crash or power loss can take the last commits back. FULL would fsync each
        # commit (each trace ingest) for that, and cost an fsync per request.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on any error."""
    async with sessionmaker() as session, session.begin():
        yield session
