"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from agentmark_gateway.db.engine import is_sqlite, make_engine

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
    them. On PostgreSQL the first takes an advisory lock and migrates; the
    others wait for it and then find nothing to do.
    """
    if is_sqlite(url):
        # SQLite has no advisory lock; one file has one serve command, whose --workers
        # start after this.
        _apply(url)
    else:
        asyncio.run(_upgrade_under_lock(url))


def _apply(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


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
