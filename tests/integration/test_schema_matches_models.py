"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from agentmark_gateway.db import models  # noqa: F401 (registers every table)
from agentmark_gateway.db.base import Base


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def test_migrated_database_has_no_difference_from_the_models(database_url):
    url = database_url
    if url.startswith("postgresql"):
        # compare_metadata needs a synchronous connection; asyncpg offers none.
        import asyncio

        from sqlalchemy.ext.asyncio import create_async_engine

        async def diff() -> list:
            engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
            async with engine.connect() as connection:
                found = await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
            await engine.dispose()
            return found

        differences = asyncio.run(diff())
    else:
        engine = create_engine(url.replace("sqlite+aiosqlite://", "sqlite://", 1))
        with warnings.catch_warnings():
            # The expression index on traces is PostgreSQL's alone (traces/models.py),
            # and alembic says so on SQLite, which cannot reflect one.
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified")
            with engine.connect() as connection:
                differences = compare_metadata(
                    MigrationContext.configure(connection), Base.metadata
                )
        engine.dispose()
    assert differences == []
