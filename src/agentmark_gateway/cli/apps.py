from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import policy
from agentmark_gateway.apps import service
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import render
from agentmark_gateway.settings import Settings

app = typer.Typer(help="Apps: every key and all data belong to one.", no_args_is_help=True)


RETENTION_HELP = "Days its traces are kept (0: for ever; default: AGENTMARK_RETENTION_DAYS)"


def _retention(days: int | None, default: int) -> str:
    """What the app keeps, as the operator reads it."""
    if days is None:
        return f"default ({default} days)" if default else "default (for ever)"
    return f"{days} days" if days else "for ever"


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Unique app name")],
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", min=0, help=RETENTION_HELP)
    ] = None,
) -> None:
    """Create an app; prints its id."""

    async def work(session: AsyncSession, _: Settings) -> str:
        made = await service.create_app(
            session, actor=CLI_ACTOR, name=name, retention_days=retention_days
        )
        return made.id

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

    async def work(session: AsyncSession, settings: Settings) -> list[list[object]]:
        a = await service.find_app(session, app_ref)
        return [
            ["id", a.id],
            ["name", a.name],
            ["retention", _retention(a.retention_days, settings.retention_days)],
            ["key policy", _key_policy(a.key_max_lifetime_days, a.key_expiry_required)],
            ["created", a.created_at],
        ]

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


@app.command("retention")
def retention(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id or name")],
    days: Annotated[
        str, typer.Argument(help="Days its traces are kept (0: for ever), or 'default'")
    ],
) -> None:
    """Set how long an app's traces, spans and scores are kept."""
    if days == "default":
        value = None
    elif days.isascii() and days.isdigit():
        value = int(days)
    else:
        raise typer.BadParameter("give a number of days or 'default'", param_hint="DAYS")

    async def work(session: AsyncSession, settings: Settings) -> str:
        a = await service.find_app(session, app_ref)
        a = await service.set_retention(session, actor=CLI_ACTOR, app=a, retention_days=value)
        return _retention(a.retention_days, settings.retention_days)

    typer.echo(f"retention: {run(work)}")


def _key_policy(days: int | None, required: bool) -> str:
    if days is not None:
        return f"keys expire within {days} days"
    return "keys must expire" if required else "none"


@app.command("key-policy")
def key_policy(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="App id or name")],
    max_lifetime_days: Annotated[
        str | None,
        typer.Option(
            "--max-lifetime-days",
            help="The longest a key may live, in days (1 to 3650), or 'none'",
        ),
    ] = None,
    expiry_required: Annotated[
        bool | None,
        typer.Option(
            "--expiry-required/--expiry-optional", help="Whether every key must have an expiry"
        ),
    ] = None,
) -> None:
    """Show or set an app's key policy; it applies to keys created or edited from now on."""
    days: int | None = None
    if max_lifetime_days is not None and max_lifetime_days != "none":
        if not (max_lifetime_days.isascii() and max_lifetime_days.isdigit()):
            raise typer.BadParameter(
                "give a number of days or 'none'", param_hint="--max-lifetime-days"
            )
        days = int(max_lifetime_days)

    async def work(session: AsyncSession, _: Settings) -> str:
        a = await service.find_app(session, app_ref)
        if max_lifetime_days is not None or expiry_required is not None:
            a = await policy.set_policy(
                session,
                actor=CLI_ACTOR,
                app=a,
                max_lifetime_days=days
                if max_lifetime_days is not None
                else a.key_max_lifetime_days,
                expiry_required=a.key_expiry_required
                if expiry_required is None
                else expiry_required,
            )
        return _key_policy(a.key_max_lifetime_days, a.key_expiry_required)

    typer.echo(f"key policy: {run(work)}")


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
