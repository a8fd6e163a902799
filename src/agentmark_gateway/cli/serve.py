from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import typer
from fastapi import FastAPI

from agentmark_gateway.app import create_app
from agentmark_gateway.cli import http_server
from agentmark_gateway.cli.http_server import GRACEFUL_SHUTDOWN_SECONDS
from agentmark_gateway.cli.parent import exit_with_master
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.settings import Settings
from agentmark_gateway.users import service as users

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "factory", "serve"]

ServerName = Literal["granian", "uvicorn"]


def factory() -> FastAPI:
    """Entry point for each server worker: settings from the environment."""
    exit_with_master()
    settings = Settings()
    app = create_app(settings)
    return http_server.log_lifespan(app) if settings.server == "granian" else app


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


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes")] = 1,
    server: Annotated[
        ServerName | None, typer.Option(help="HTTP server (default: AGENTMARK_SERVER)")
    ] = None,
) -> None:
    """Migrate the database, then serve the API and the dashboard."""
    chosen = {"host": host, "port": port, "server": server}
    overrides = {k: v for k, v in chosen.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    migrate.upgrade(settings.resolved_database_url)  # safe while other processes start too
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
    http_server.run("agentmark_gateway.cli.serve:factory", settings, workers)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
