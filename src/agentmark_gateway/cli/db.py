from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agentmark_gateway.cli.context import settings
from agentmark_gateway.db import backup as backups
from agentmark_gateway.db import migrate, revisions
from agentmark_gateway.settings import PEPPER_FILE, Settings

app = typer.Typer(help="The database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply all migrations (safe beside a starting server or another upgrade)."""
    migrate.upgrade(settings().resolved_database_url)
    typer.echo("database is up to date")


FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="The backup file")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace what is there")]


@app.command("backup")
def backup(file: FileArg, force: ForceOption = False) -> None:
    """Copy the database to FILE (safe while the gateway serves)."""
    config = settings()
    try:
        revision = backups.backup(config.resolved_database_url, file, force=force)
    except backups.BackupError as exc:
        _fail(exc)
    typer.echo(f"backed up the database (schema {revision}) to {file}")
    typer.echo(
        f"note: {_pepper_note(config)}: back it up too, apart from this file, and keep it secret"
    )


@app.command("restore")
def restore(file: FileArg, force: ForceOption = False) -> None:
    """Replace the database with the backup FILE (stop the gateway first)."""
    config = settings()
    try:
        revision = backups.restore(config.resolved_database_url, file, force=force)
    except backups.BackupError as exc:
        _fail(exc)
    typer.echo(f"restored {file} (schema {revision})")
    if revision != revisions.head():
        typer.echo("its schema is older than this version: serve (or db upgrade) brings it up")
    pepper = config.data_dir / PEPPER_FILE
    if config.key_pepper is None and not pepper.exists():
        typer.echo(
            f"note: no key pepper at {pepper} yet: copy there the one in use when the backup "
            "was made (or set AGENTMARK_KEY_PEPPER) before serving, or no key will verify"
        )
    else:
        typer.echo(f"note: {_pepper_note(config)}, the one in use when the backup was made")


def _pepper_note(config: Settings) -> str:
    """Where the key pepper lives (never its value): keys verify only with the same one."""
    if config.key_pepper is not None:
        return "keys verify only with the same AGENTMARK_KEY_PEPPER"
    return f"keys verify only with the same key pepper, {config.data_dir / PEPPER_FILE}"


def _fail(exc: Exception) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
