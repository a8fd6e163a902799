"""Administering limits, allowlists and expiry warnings: the CLI and the API's key views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from agentmark_gateway.cli.main import app as cli_app

runner = CliRunner()


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", "test-pepper-not-secret")

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli_app, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def show(cli, key: str = "ci") -> dict[str, str]:
    lines = cli("keys", "show", "--app", "shop", key).output.splitlines()
    fields = {}
    for line in lines:
        name, _, value = line.partition("  ")
        fields[name.strip()] = value.strip()
    return fields


def test_the_cli_creates_a_key_with_a_rate_limit_and_an_allowlist(cli):
    cli("apps", "create", "shop")
    created = cli(
        "keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk",
        "--rate-limit", "120", "--allow-cidr", "203.0.113.0/24", "--allow-cidr", "2001:db8::/32",
    )  # fmt: skip
    assert "sk_agentmark_" in created.output
    fields = show(cli)
    assert fields["rate limit"] == "120/min"
    assert fields["allowed IPs"] == "203.0.113.0/24, 2001:db8::/32"
    listed = cli("keys", "list", "--app", "shop").output
    assert "RATE LIMIT" in listed and "ALLOWED IPS" in listed
    assert "120/min" in listed and "203.0.113.0/24, 2001:db8::/32" in listed


def test_the_cli_edits_and_clears_both_fields(cli, monkeypatch):
    cli("apps", "create", "shop")
    cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk")
    fields = show(cli)
    assert fields["rate limit"] == "default (none)"
    assert fields["allowed IPs"] == "any address"

    cli("keys", "edit", "--app", "shop", "ci", "--rate-limit", "30", "--allow-cidr", "10.0.0.0/8")
    fields = show(cli)
    assert (fields["rate limit"], fields["allowed IPs"]) == ("30/min", "10.0.0.0/8")

    # --allow-cidr replaces the list; the rate limit stays.
    cli("keys", "edit", "--app", "shop", "ci", "--allow-cidr", "::1", "--allow-cidr", "192.0.2.1")
    fields = show(cli)
    assert (fields["rate limit"], fields["allowed IPs"]) == ("30/min", "::1/128, 192.0.2.1/32")

    cli("keys", "edit", "--app", "shop", "ci", "--no-rate-limit", "--no-allowlist")
    monkeypatch.setenv("AGENTMARK_RATE_LIMIT_PER_KEY", "600")
    fields = show(cli)
    assert (fields["rate limit"], fields["allowed IPs"]) == ("default (600/min)", "any address")


def test_the_cli_refuses_a_bad_cidr_by_name_and_contradictory_flags(cli):
    cli("apps", "create", "shop")
    bad = cli(
        "keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk",
        "--allow-cidr", "10.0.0.1/8",
    code=1)  # fmt: skip
    assert "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?" in bad.output
    cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk")
    bad = cli("keys", "edit", "--app", "shop", "ci", "--allow-cidr", "office", code=1)
    assert "'office' is not a CIDR" in bad.output
    cli("keys", "edit", "--app", "shop", "ci", "--rate-limit", "5", "--no-rate-limit", code=2)
    cli("keys", "edit", "--app", "shop", "ci", "--allow-cidr", "::1", "--no-allowlist", code=2)
    cli("keys", "edit", "--app", "shop", "ci", "--rate-limit", "0", code=2)
    fields = show(cli)
    assert (fields["rate limit"], fields["allowed IPs"]) == ("default (none)", "any address")


def test_cli_edits_are_audited_with_before_and_after(cli, admin, client):
    app_id = cli("apps", "create", "shop").output.strip().splitlines()[-1].split()[-1]
    cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk", "--rate-limit", "10")
    cli("keys", "edit", "--app", "shop", "ci", "--rate-limit", "20", "--allow-cidr", "10.0.0.0/8")
    events = client.get(
        "/v1/audit-log", params={"action": "api_key.update"}, headers=admin.headers
    ).json()["data"]
    assert len(events) == 1 and events[0]["app_id"] == app_id and events[0]["actor"] == "cli"
    details = events[0]["details"]
    assert details["changes"]["rate_limit_per_minute"] == {"before": 10, "after": 20}
    assert details["changes"]["allowed_cidrs"] == {"before": None, "after": ["10.0.0.0/8"]}
    assert details["allowed_cidrs_added"] == ["10.0.0.0/8"]


# -- the expiry warning ------------------------------------------------------------


def test_keys_expiring_within_seven_days_are_flagged_in_the_api(admin, client):
    app_id = admin.create_app()
    now = datetime.now(UTC)
    soon = admin.create_key(app_id, role="sdk", expires_at=(now + timedelta(days=3)).isoformat())
    edge = admin.create_key(
        app_id, role="sdk", expires_at=(now + timedelta(days=6, hours=23)).isoformat()
    )
    later = admin.create_key(app_id, role="sdk", expires_at=(now + timedelta(days=30)).isoformat())
    never = admin.create_key(app_id, role="sdk")
    assert soon["expiring_soon"] is True and later["expiring_soon"] is False
    headers = {**admin.headers, "X-Agentmark-App-Id": app_id}
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=headers).json()["data"]}
    flags = [listed[k["id"]]["expiring_soon"] for k in (soon, edge, later, never)]
    assert flags == [True, True, False, False]
    shown = client.get(f"/v1/api-keys/{soon['id']}", headers=headers).json()["data"]
    assert shown["expiring_soon"] is True
    # Moving the expiry out clears the warning.
    moved = client.patch(
        f"/v1/api-keys/{soon['id']}",
        json={"expires_at": (now + timedelta(days=90)).isoformat()},
        headers=headers,
    ).json()["data"]
    assert moved["expiring_soon"] is False


def test_the_expiry_warning_is_documented_in_the_openapi_schema(client):
    schema = client.get("/v1/openapi.json").json()["components"]["schemas"]["ApiKeyPublic"]
    assert "7 days" in schema["properties"]["expiring_soon"]["description"]


def test_the_cli_flags_keys_expiring_within_seven_days_in_list_and_show(cli):
    cli("apps", "create", "shop")
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk", "--expires-at", soon)
    cli("keys", "create", "--app", "shop", "--name", "bi", "--role", "sdk", "--expires-at", later)
    listed = cli("keys", "list", "--app", "shop").output.splitlines()
    assert "(within 7 days)" in next(line for line in listed if " ci " in line)
    assert "(within 7 days)" not in next(line for line in listed if " bi " in line)
    assert show(cli, "ci")["expires"].endswith("(within 7 days)")
    assert "(within 7 days)" not in show(cli, "bi")["expires"]
