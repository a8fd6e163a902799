"""``keys usage`` and ``keys advice``: what a key did, read from the counts every process wrote.

Counts reach the database every ``AGENTMARK_USAGE_FLUSH_SECONDS`` from each running
server process; this command reads what is there.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway import moments
from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.apps.service import find_app
from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import cell, render
from agentmark_gateway.settings import Settings
from agentmark_gateway.usage import service
from agentmark_gateway.usage.service import Bucket, Window

AppOption = Annotated[str, typer.Option("--app", help="App id or name")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Key id or name")]
OUTCOMES = ("2xx", "4xx", "401", "403", "429", "5xx")


def _moment(value: str | None, *, end: bool) -> Any:
    if value is None:
        return None
    try:
        found = moments.read(value)
        return moments.until(found) if end else moments.earliest(found)
    except ValueError:
        raise typer.BadParameter("use a date (2027-01-31) or an ISO 8601 date-time") from None


def usage(
    app_ref: AppOption,
    key_ref: KeyArg,
    since: Annotated[
        str | None, typer.Option("--from", help="Start (default: 24 hours ago)")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="End (default: now)")] = None,
    bucket: Annotated[str, typer.Option(help="minute, hour or day")] = "hour",
) -> None:
    """A key's requests over time: by outcome, permission, spans and scores."""
    if bucket not in ("minute", "hour", "day"):
        raise typer.BadParameter("minute, hour or day", param_hint="--bucket")
    chosen: Bucket = bucket  # type: ignore[assignment]
    start, end = _moment(since, end=False), _moment(until, end=True)

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        window = Window.of(start, end, chosen)
        app = await find_app(session, app_ref)
        key = await keys.find_key(session, app_id=app.id, id_or_name=key_ref)
        return await service.key_usage(session, key, window)

    data = run(work)
    totals = data["totals"]
    typer.echo(
        f"{cell(key_ref)}: {totals['requests']} requests from {data['from']} to {data['to']}"
    )
    typer.echo("  " + "  ".join(f"{name}: {totals['outcomes'][name]}" for name in OUTCOMES))
    typer.echo(f"  spans stored: {totals['spans']}  scores stored: {totals['scores']}")
    used = ", ".join(f"{p} ({n})" for p, n in totals["permissions"].items()) or "none"
    typer.echo(f"  permissions used: {cell(used)}")
    if totals["refused"]:
        refused = ", ".join(f"{p} ({n})" for p, n in totals["refused"].items())
        typer.echo(f"  refused for lack of: {refused}")
    typer.echo(f"  last client: {cell(data['last_client_address'] or 'unknown')}")
    typer.echo(f"  last user agent: {cell(data['last_user_agent'] or 'unknown')}")
    rows = [
        [point["start"], point["requests"], *(point["outcomes"][name] for name in OUTCOMES)]
        for point in data["series"]
        if point["requests"]
    ]
    if rows:
        typer.echo("")
        typer.echo(render(["start", "requests", *OUTCOMES], rows))


def advice(app_ref: AppOption, key_ref: KeyArg) -> None:
    """The permissions a key used and did not use, and the narrowest set that would do."""

    async def work(session: AsyncSession, _settings: Settings) -> dict[str, Any]:
        app = await find_app(session, app_ref)
        key = await keys.find_key(session, app_id=app.id, id_or_name=key_ref)
        return await service.advice(session, key)

    data = run(work)
    for name, window in data["windows"].items():
        typer.echo(
            f"{name}: {window['requests']} requests; used: {', '.join(window['used']) or 'none'}; "
            f"unused: {', '.join(window['unused']) or 'none'}"
        )
    if data["refused"]:
        refused = ", ".join(f"{p} ({n})" for p, n in data["refused"].items())
        typer.echo(f"refused for lack of: {refused}")
    typer.echo(data["advice"]["summary"])
    if data["advice"]["narrower"]:
        advised = data["advice"]
        flags = (
            f"--role {advised['role']}"
            if advised["role"] != "custom"
            else " ".join(f"--permission {p}" for p in advised["permissions"])
        )
        typer.echo(
            f"apply: agentmark-gateway keys edit --app {cell(app_ref)} {cell(key_ref)} {flags}"
        )
