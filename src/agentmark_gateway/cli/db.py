from __future__ import annotations

import typer

from agentmark_gateway.cli.context import settings
from agentmark_gateway.db import migrate

app = typer.Typer(help="The database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply all migrations (safe beside a starting server or another upgrade)."""
    migrate.upgrade(settings().resolved_database_url)
    typer.echo("database is up to date")
