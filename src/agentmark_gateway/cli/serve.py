from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import is_sqlite, make_engine, make_sessionmaker
from agentmark_gateway.settings import Settings
from agentmark_gateway.users import service as users

# PostgreSQL advisory lock taken around migrations ("agmigrat" as a number).
MIGRATION_LOCK_ID = 0x61676D6967726174
# After SIGTERM, how long requests in flight may take before they are cut off
# (a supervisor's stop timeout should be longer: deploy/systemd/ uses 30 s).
GRACEFUL_SHUTDOWN_SECONDS = 20


def factory() -> FastAPI:
    """Entry point for each server worker: settings from the environment."""
    return create_app(Settings())


async def _first_run_link(settings: Settings) -> str | None:
    """While no user exists, a one-time link that creates the owner."""
    engine = make_engine(settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            if await users.count_users(session) > 0:
                return None
            token = await users.issue_link(
                session, purpose="setup", user_id=None, ttl=users.SETUP_TTL
            )
            await session.commit()
            return f"{settings.base_url}/setup/{token}"
    finally:
        await engine.dispose()


async def _migrate_under_lock(url: str) -> None:
    """Migrations while holding a PostgreSQL advisory lock.

    Processes of one deployment often start together; without the lock each
    would run the same CREATE TABLEs at once and all but one would crash. The
    first migrates, the others wait for it and then find nothing to do.
    """
    engine = make_engine(url)
    try:
        async with engine.connect() as lock:
            await lock.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            try:
                # Alembic runs its own event loop, so it gets a thread of its own.
                await asyncio.to_thread(migrate.upgrade, url)
            finally:
                await lock.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
    finally:
        await engine.dispose()


def migrate_once(url: str) -> None:
    """Bring the database to the newest schema, safely from several processes at once."""
    if is_sqlite(url):
        # One SQLite file has one serve command (its --workers start after this).
        migrate.upgrade(url)
    else:
        asyncio.run(_migrate_under_lock(url))


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes")] = 1,
) -> None:
    """Migrate the database, then serve the API and the dashboard."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    migrate_once(settings.resolved_database_url)
    settings.pepper_bytes()  # make the pepper once, before workers race for it
    link = asyncio.run(_first_run_link(settings))
    typer.echo(f"AgentMark Gateway on {settings.base_url}  (API docs: {settings.base_url}/docs)")
    typer.echo(f"database: {_safe_url(settings.resolved_database_url)}")
    if link:
        typer.echo("No user exists yet. Create the owner with either:")
        typer.echo(f"  open {link}")
        typer.echo("  agentmark-gateway users create --email you@example.com --role owner")
    import os

    # Workers build their own settings from the environment; pass the CLI's choices on.
    os.environ["AGENTMARK_HOST"] = settings.host
    os.environ["AGENTMARK_PORT"] = str(settings.port)
    uvicorn.run(
        "agentmark_gateway.cli.serve:factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
