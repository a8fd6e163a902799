"""How CLI commands reach the database: one engine per command, the operator as actor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.errors import ApiError
from agentmark_gateway.settings import Settings

T = TypeVar("T")


def settings() -> Settings:
    return Settings()


def run(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in a session on the configured database; errors become exit code 1."""
    config = settings()

    async def main() -> T:
        engine = make_engine(config.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await work(session, config)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ApiError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
