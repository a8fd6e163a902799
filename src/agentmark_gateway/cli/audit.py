from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway import moments
from agentmark_gateway.apps.service import find_app
from agentmark_gateway.audit.service import list_events
from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import render
from agentmark_gateway.settings import Settings


def show(
    app_ref: Annotated[str | None, typer.Option("--app", help="App id or name")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. api_key.update")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The audit log, newest first."""
    since_at = _since(since) if since else None

    async def work(session: AsyncSession, _: Settings) -> list[list[object]]:
        app_id = (await find_app(session, app_ref)).id if app_ref else None
        events, _total = await list_events(
            session, app_id=app_id, action=action, since=since_at, limit=limit
        )
        return [
            [
                e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.action,
                e.target_id,
                e.app_id,
                _summary(e.details),
            ]
            for e in events
        ]

    typer.echo(render(["TIME", "ACTOR", "ACTION", "TARGET", "APP", "DETAILS"], run(work)))


def _since(text: str) -> datetime:
    """A bare date means from the start of that day (UTC), as in the audit-log route."""
    try:
        return moments.earliest(moments.read(text))
    except ValueError:
        raise typer.BadParameter(
            "use ISO 8601, e.g. 2027-01-31T00:00:00Z", param_hint="--since"
        ) from None


def _summary(details: dict[str, object]) -> str:
    parts = []
    for key in ("name", "permissions_added", "permissions_removed", "grace_seconds"):
        value = details.get(key)
        if value:
            parts.append(f"{key}={value}")
    return " ".join(parts)
