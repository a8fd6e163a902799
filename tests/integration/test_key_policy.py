"""An app's key hygiene policy: a maximum lifetime and "expiry required", set through the
API and the CLI, audited, and enforced when a key is created or its expiry edited."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from agentmark_gateway.cli.main import app as cli_app
from agentmark_gateway.db.base import utcnow
from tests.conftest import PEPPER


def mgmt(admin, app_id: str) -> dict[str, str]:
    return {**admin.headers, "X-Agentmark-App-Id": app_id}


def in_days(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def set_policy(admin, client, app_id: str, **policy) -> dict:
    response = client.patch(f"/v1/apps/{app_id}", json=policy, headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def create(admin, client, app_id: str, **body):
    return client.post(
        "/v1/api-keys", json={"name": "k", "role": "sdk", **body}, headers=mgmt(admin, app_id)
    )


def test_a_maximum_lifetime_refuses_keys_without_expiry_or_living_longer(admin, client):
    app_id = admin.create_app()
    answer = set_policy(admin, client, app_id, key_max_lifetime_days=30)
    assert answer["key_max_lifetime_days"] == 30
    shown = client.get(f"/v1/apps/{app_id}", headers=admin.headers).json()["data"]
    assert shown["key_max_lifetime_days"] == 30 and shown["key_expiry_required"] is False

    never = create(admin, client, app_id)
    assert never.status_code == 400
    assert never.json() == {
        "error": {
            "code": "invalid_expiry",
            "message": "expires_at is required: this app's keys live at most 30 days",
            "field": "expires_at",
        }
    }
    too_long = create(admin, client, app_id, expires_at=in_days(31))
    assert too_long.status_code == 400
    assert too_long.json()["error"] == {
        "code": "invalid_expiry",
        "message": "expires_at must be at most 30 days ahead: this app's key policy",
        "field": "expires_at",
    }
    fits = create(admin, client, app_id, expires_at=in_days(29))
    assert fits.status_code == 201, fits.text


def test_an_edit_is_held_to_the_policy_only_when_it_changes_the_expiry(admin, client):
    app_id = admin.create_app()
    old = admin.create_key(app_id, role="sdk", name="made-before")  # never expires
    set_policy(admin, client, app_id, key_max_lifetime_days=7)
    url = f"/v1/api-keys/{old['id']}"

    renamed = client.patch(url, json={"name": "renamed"}, headers=mgmt(admin, app_id))
    assert renamed.status_code == 200, renamed.text
    for expiry in (None, in_days(8)):
        refused = client.patch(url, json={"expires_at": expiry}, headers=mgmt(admin, app_id))
        assert refused.status_code == 400
        assert refused.json()["error"]["field"] == "expires_at"
    shortened = client.patch(url, json={"expires_at": in_days(6)}, headers=mgmt(admin, app_id))
    assert shortened.status_code == 200, shortened.text


def test_expiry_required_alone_takes_any_expiry_but_none(admin, client):
    app_id = admin.create_app()
    set_policy(admin, client, app_id, key_expiry_required=True)
    refused = create(admin, client, app_id)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "expires_at is required: this app's keys must have an expiry"
    )
    assert create(admin, client, app_id, expires_at=in_days(3000)).status_code == 201


def test_policy_changes_are_audited_and_can_be_lifted(admin, client):
    app_id = admin.create_app()
    set_policy(admin, client, app_id, key_max_lifetime_days=90, key_expiry_required=True)
    lifted = set_policy(admin, client, app_id, key_max_lifetime_days=None)
    assert lifted["key_max_lifetime_days"] is None and lifted["key_expiry_required"] is True
    lifted = set_policy(admin, client, app_id, key_expiry_required=False)
    assert create(admin, client, app_id).status_code == 201

    events = client.get("/v1/audit-log", params={"app_id": app_id}, headers=admin.headers).json()[
        "data"
    ]
    changes = [e["details"] for e in events if e["action"] == "app.key_policy"]
    assert {"key_max_lifetime_days": 90, "key_expiry_required": True} in [
        c["after"] for c in changes
    ]
    assert {"key_max_lifetime_days": None, "key_expiry_required": False} in [
        c["after"] for c in changes
    ]


def test_an_out_of_range_policy_is_a_400(admin, client):
    app_id = admin.create_app()
    for body in (
        {"key_max_lifetime_days": 0},
        {"key_max_lifetime_days": 3651},
        {"key_max_lifetime_days": "30"},
        {"key_expiry_required": "yes"},
    ):
        response = client.patch(f"/v1/apps/{app_id}", json=body, headers=admin.headers)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_request_body", body
    shown = client.get(f"/v1/apps/{app_id}", headers=admin.headers).json()["data"]
    assert shown["key_max_lifetime_days"] is None


def test_the_cli_sets_the_policy_and_key_create_obeys_it(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(cli_app, list(args))

    assert cli("apps", "create", "shop").exit_code == 0
    result = cli("apps", "key-policy", "shop", "--max-lifetime-days", "14")
    assert result.exit_code == 0, result.output
    assert "keys expire within 14 days" in result.output
    assert "keys expire within 14 days" in cli("apps", "show", "shop").output

    refused = cli("keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk")
    assert refused.exit_code != 0
    assert "expires_at is required" in refused.output
    made = cli(
        "keys", "create", "--app", "shop", "--name", "ci", "--role", "sdk",
        "--expires-at", in_days(10),
    )  # fmt: skip
    assert made.exit_code == 0, made.output

    result = cli("apps", "key-policy", "shop", "--max-lifetime-days", "none", "--expiry-optional")
    assert "key policy: none" in result.output
    assert cli("keys", "create", "--app", "shop", "--name", "free", "--role", "sdk").exit_code == 0
    assert "app.key_policy" in cli("audit", "--app", "shop").output
