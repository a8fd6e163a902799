"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from agentmark_gateway.db.engine import async_url, is_sqlite, make_engine
from agentmark_gateway.filemodes import PRIVATE_FILE, private_dir

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock taken around migrations ("agmigrat" as a number).
LOCK_ID = 0x61676D6967726174


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # The URL goes through attributes-free main options; '%' must be escaped for configparser.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision (blocking; not in a running loop).

    Safe from several processes at once: servers of one deployment start
    together, and an operator or deploy script may run ``db upgrade`` beside
    them. The first takes a lock and migrates; the others wait for it and
    then find nothing to do. On PostgreSQL the lock is an advisory lock, on
    SQLite a lock file beside the database.
    """
    if is_sqlite(url):
        with _sqlite_lock(url):
            _apply(url)
    else:
        asyncio.run(_upgrade_under_lock(url))


def _apply(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


@contextlib.contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    """Held while one process migrates a SQLite file (``gateway.db.migrate-lock``).

    SQLite's own lock comes only with a migration's first write: two processes
    would both read the old version, then run the same migrations, the second
    failing on the tables the first made. This lock is the kernel's (``flock``):
    it goes with the process that held it, however that process ends.
    """
    database = async_url(url).database
    if not database or database == ":memory:":
        yield  # a database of one connection: nobody to wait for
        return
    path = Path(database).resolve()
    if not path.parent.exists():
        private_dir(path.parent)  # as make_engine would: a new data folder is private
    fd = os.open(path.with_name(path.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def _upgrade_under_lock(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as lock:
            await lock.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
            try:
                # Alembic runs its own event loop, so it gets a thread of its own.
                await asyncio.to_thread(_apply, url)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
    finally:
        await engine.dispose()
