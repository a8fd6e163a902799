from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.apps import service
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import render
from agentmark_gateway.settings import Settings

app = typer.Typer(help="Apps: every key and all data belong to one.", no_args_is_help=True)


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="Unique app name")]) -> None:
    """Create an app; prints its id."""

    async def work(session: AsyncSession, _: Settings) -> str:
        return (await service.create_app(session, actor=CLI_ACTOR, name=name)).id

    typer.echo(run(work))


@app.command("list")
def list_apps() -> None:
    """All apps."""

    async def work(session: AsyncSession, _: Settings) -> list[list[object]]:
        apps, _total = await service.list_apps(session)
        return [[a.id, a.name, a.created_at] for a in apps]

    typer.echo(render(["ID", "NAME", "CREATED"], run(work)))


@app.command("show")
def show(app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id or name")]) -> None:
    """One app."""

    async def work(session: AsyncSession, _: Settings) -> list[list[object]]:
        a = await service.find_app(session, app_ref)
        return [["id", a.id], ["name", a.name], ["created", a.created_at]]

    typer.echo(render(["FIELD", "VALUE"], run(work)))


@app.command("rename")
def rename(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id or name")],
    name: Annotated[str, typer.Argument(help="New name")],
) -> None:
    """Rename an app."""

    async def work(session: AsyncSession, _: Settings) -> str:
        a = await service.find_app(session, app_ref)
        return (await service.rename_app(session, actor=CLI_ACTOR, app=a, name=name)).name

    typer.echo(f"renamed to {run(work)}")


@app.command("delete")
def delete(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id or name")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Delete an app with all its keys and data."""
    if not yes:
        typer.confirm(f"Delete app {app_ref}, its keys and all its data?", abort=True)

    async def work(session: AsyncSession, _: Settings) -> str:
        a = await service.find_app(session, app_ref)
        await service.delete_app(session, actor=CLI_ACTOR, app=a)
        return a.id

    typer.echo(f"deleted {run(work)}")
