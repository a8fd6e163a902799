"""The operator's CLI on the configured database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentmark_gateway.cli.main import app
from agentmark_gateway.permissions.table import markdown_table
from agentmark_gateway.routers import api_routes

runner = CliRunner()


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", "test-pepper-not-secret")

    def invoke(*args: str, input: str | None = None, ok: bool = True):
        result = runner.invoke(app, list(args), input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_users_create_reads_the_password_from_stdin_and_lists(cli):
    result = cli(
        "users",
        "create",
        "--email",
        "Ops@Example.com",
        "--role",
        "owner",
        "--password-stdin",
        input="s3cret-password\n",
    )
    assert "created owner ops@example.com" in result.output
    assert "s3cret" not in result.output
    listed = cli("users", "list")
    assert "ops@example.com" in listed.output and "owner" in listed.output


def test_users_create_prompts_for_the_password_twice(cli):
    result = cli(
        "users",
        "create",
        "--email",
        "p@example.com",
        "--role",
        "read",
        input="long password\nlong password\n",
    )
    assert "created read p@example.com" in result.output


def test_users_create_refuses_an_unknown_role(cli):
    result = cli(
        "users",
        "create",
        "--email",
        "x@example.com",
        "--role",
        "god",
        "--password-stdin",
        input="long password\n",
        ok=False,
    )
    assert result.exit_code != 0


def test_keys_lifecycle_from_the_cli(cli):
    app_id = cli("apps", "create", "shop").output.strip()
    assert app_id.startswith("app_")
    assert "shop" in cli("apps", "list").output

    created = cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk")
    value = created.stdout.strip().splitlines()[0]
    assert value.startswith("sk_agentmark_")
    assert "will not be shown again" in created.output

    listed = cli("keys", "list", "--app", app_id).output
    assert "ci" in listed and "sdk" in listed and value not in listed
    assert f"sk_agentmark_{value[13:17]}…{value[-4:]}" in listed

    edited = cli(
        "keys",
        "edit",
        "--app",
        "shop",
        "ci",
        "--permission",
        "trace.read",
        "--permission",
        "score.write",
    ).output
    assert "custom [trace.read, score.write]" in edited
    shown = cli("keys", "show", "--app", "shop", "ci").output
    assert "trace.read, score.write" in shown and value not in shown

    rolled = cli("keys", "roll", "--app", "shop", "ci", "--grace-seconds", "3600")
    new_value = rolled.stdout.strip().splitlines()[0]
    assert new_value.startswith("sk_agentmark_") and new_value != value

    cli("keys", "delete", "--app", "shop", "ci", "--yes")
    audit = cli("audit", "--app", "shop").output
    for action in (
        "api_key.create",
        "api_key.update",
        "api_key.roll",
        "api_key.delete",
        "app.create",
    ):
        assert action in audit
    assert " cli " in audit
    assert value not in audit and new_value not in audit


def test_keys_create_without_role_or_permission_fails_clearly(cli):
    cli("apps", "create", "shop")
    result = cli("keys", "create", "--app", "shop", "--name", "x", ok=False)
    assert result.exit_code == 1
    assert "Select a role or at least one permission" in result.output


def test_apps_rename_and_delete(cli):
    cli("apps", "create", "one")
    cli("apps", "rename", "one", "two")
    assert "two" in cli("apps", "show", "two").output
    cli("apps", "delete", "two", "--yes")
    assert "two" not in cli("apps", "list").output


def test_apps_retention_is_set_shown_and_reset(cli, monkeypatch):
    monkeypatch.setenv("AGENTMARK_RETENTION_DAYS", "30")
    cli("apps", "create", "shop", "--retention-days", "90")
    assert "90 days" in cli("apps", "show", "shop").output
    assert "retention: for ever" in cli("apps", "retention", "shop", "0").output
    assert "retention: default (30 days)" in cli("apps", "retention", "shop", "default").output
    assert "default (30 days)" in cli("apps", "show", "shop").output
    for refused in ("3651", "-1", "soon"):
        result = cli("apps", "retention", "shop", refused, ok=False)
        assert result.exit_code != 0, refused
    assert "app.retention" in cli("audit", "--app", "shop").output


def test_permissions_prints_the_generated_table(cli):
    assert cli("permissions").stdout == markdown_table(api_routes())


def test_audit_since_that_is_not_iso_is_refused_clearly(cli):
    result = cli("audit", "--since", "yesterday", ok=False)
    assert result.exit_code == 2
    assert "--since" in result.output and "ISO 8601" in result.output
