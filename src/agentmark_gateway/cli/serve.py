from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from agentmark_gateway.app import create_app
from agentmark_gateway.cli.parent import MASTER_PID_VARIABLE, exit_with_master
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.read_timeouts import HeaderTimeoutProtocol
from agentmark_gateway.settings import Settings
from agentmark_gateway.users import service as users

# After SIGTERM, how long requests in flight may take before they are cut off
# (a supervisor's stop timeout should be longer: deploy/systemd/ uses 30 s).
GRACEFUL_SHUTDOWN_SECONDS = 20


def factory() -> FastAPI:
    """Entry point for each server worker: settings from the environment."""
    exit_with_master()
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


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes")] = 1,
) -> None:
    """Migrate the database, then serve the API and the dashboard."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
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
    if workers > 1:
        os.environ[MASTER_PID_VARIABLE] = str(os.getpid())
    else:
        os.environ.pop(MASTER_PID_VARIABLE, None)  # this process serves; none to watch
    uvicorn.run(
        "agentmark_gateway.cli.serve:factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        # Headers have a deadline (AGENTMARK_READ_TIMEOUT_SECONDS); uvicorn's own
        # protocol waits for them forever.
        http=f"{HeaderTimeoutProtocol.__module__}:{HeaderTimeoutProtocol.__name__}",
        # X-Forwarded-For and X-Forwarded-Proto are read by the app, from the
        # trusted proxies only (netaccess, forwarded): one rule for both.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
