"""Whether this process can serve: its database answers and the schema is current.

``/health`` says the process is alive; ``/ready`` asks this, for load balancers
and orchestrators that should send traffic only where it can be served.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentmark_gateway.db import revisions

# A check that takes longer is an answer too (not ready): a probe must not hang on
# a database that stopped answering, however long the engine's own timeouts are.
READY_TIMEOUT_SECONDS = 2.0

NO_ANSWER = "The database does not answer"
NO_SCHEMA = "The database has no gateway schema: run `agentmark-gateway db upgrade`"
BEHIND = "The database schema is older than this version: run `agentmark-gateway db upgrade`"


async def not_ready(engine: AsyncEngine) -> str | None:
    """None when ready, else why not (in words for the operator)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            versions = await _schema_versions(engine)
    except Exception:
        # Whatever stops the check (a refused or reset connection, a timeout, a
        # server that is not PostgreSQL) is the same answer: not ready.
        return NO_ANSWER
    if versions is None:
        return NO_SCHEMA
    if revisions.head() in versions:
        return None
    if versions and not versions & revisions.known():
        # A newer version migrated it: the upgrade procedure runs `db upgrade`
        # before it replaces the processes, and the old ones serve meanwhile.
        return None
    return BEHIND


async def _schema_versions(engine: AsyncEngine) -> set[str] | None:
    """The database's Alembic revisions; None when it has no version table."""
    async with engine.connect() as connection:
        try:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError as exc:
            if _no_such_table(exc):
                return None
            raise
        return {str(version) for version in rows.scalars()}


def _no_such_table(exc: DBAPIError) -> bool:
    # PostgreSQL's undefined_table; SQLite says so in words.
    return getattr(exc.orig, "sqlstate", None) == "42P01" or "no such table" in str(exc.orig)
