"""Databases the resilience tests make for themselves on the shared PostgreSQL server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from tests.conftest import _pg_execute, _pg_url


@contextmanager
def fresh_pg_database(template: str) -> Iterator[str]:
    """A new database on the shared server, copied from ``template``; dropped after."""
    name = f"agw_{uuid.uuid4().hex[:16]}"
    _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def alembic_versions(database_url: str) -> list[str]:
    """The revisions recorded in a PostgreSQL database's ``alembic_version`` table."""

    async def read() -> list[str]:
        conn = await asyncpg.connect(database_url.replace("postgresql://", "postgres://", 1))
        try:
            return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await conn.close()

    return asyncio.run(read())
