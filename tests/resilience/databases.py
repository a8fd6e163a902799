"""Databases the resilience tests make for themselves on the shared PostgreSQL server."""

from __future__ import annotations

import asyncio

import asyncpg


def alembic_versions(database_url: str) -> list[str]:
    """The revisions recorded in a PostgreSQL database's ``alembic_version`` table."""

    async def read() -> list[str]:
        conn = await asyncpg.connect(database_url.replace("postgresql://", "postgres://", 1))
        try:
            return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await conn.close()

    return asyncio.run(read())
