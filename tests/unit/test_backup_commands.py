"""The PostgreSQL commands `db backup` and `db restore` run are the ones docs/deploy.md gives."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from agentmark_gateway.db import backup

DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def test_the_documented_pg_dump_and_pg_restore_commands_are_the_ones_the_cli_runs():
    doc = DEPLOY_DOC.read_text()
    assert " ".join(backup.PG_DUMP) + " --file=" in doc
    assert " ".join(backup.PG_RESTORE) + " --dbname=" in doc


def test_the_password_goes_to_the_environment_not_the_command_line():
    url = make_url("postgresql+asyncpg://gateway:s3cr%40t@db.internal:5433/gw?ssl=require")

    target, env = backup.libpq_target(url)

    assert target == "postgresql://gateway@db.internal:5433/gw?sslmode=require"
    assert "s3cr" not in target
    assert env["PGPASSWORD"] == "s3cr@t"
