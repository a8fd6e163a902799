"""Names and emails refuse control and bidi-override characters; the CLI escapes them."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.cli.main import app as cli_app
from tests.conftest import PEPPER
from tests.integration.test_web_flows import web_sign_in

# Line erase + colour, a window title, a bell, DEL, a C1 CSI, bidi override and isolate.
HOSTILE = ["ci\x1b[2K\x1b[31mprod", "x\x1b]0;owned\x07", "tab\there", "del\x7f", "c1\x9b2J"]
HOSTILE += ["evil\u202egnp.exe", "iso\u2066late\u2069"]


def _refused(response, field):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert field in error["message"] and "control" in error["message"]


@pytest.mark.parametrize("text", HOSTILE)
def test_names_and_emails_with_control_characters_are_a_400(admin, text):
    client, headers = admin.client, admin.headers
    _refused(client.post("/v1/apps", json={"name": text}, headers=headers), "name")
    app_id = admin.create_app()
    _refused(client.patch(f"/v1/apps/{app_id}", json={"name": text}, headers=headers), "name")
    key_headers = {**headers, "X-Agentmark-App-Id": app_id}
    created = client.post("/v1/api-keys", json={"name": text, "role": "sdk"}, headers=key_headers)
    _refused(created, "name")
    key = admin.create_key(app_id, role="sdk", name="plain")
    edited = client.patch(f"/v1/api-keys/{key['id']}", json={"name": text}, headers=key_headers)
    _refused(edited, "name")
    invited = client.post(
        "/v1/members", json={"email": f"a{text}@example.com", "role": "read"}, headers=headers
    )
    _refused(invited, "email")
    names = [k["name"] for k in client.get("/v1/api-keys", headers=key_headers).json()["data"]]
    assert names == ["plain"]


def test_the_dashboard_forms_refuse_control_characters(client, admin):
    token = web_sign_in(client, "owner@example.com")
    app_page = client.post("/apps", data={"name": "a\x1b[2Kb", "csrf_token": token})
    assert app_page.status_code == 400 and "control" in app_page.text
    app_id = admin.create_app("shop")
    keys_url = f"/apps/{app_id}/settings/api-keys"
    key_page = client.post(
        keys_url, data={"name": "ci\x1b[31m", "role": "sdk", "csrf_token": token}
    )
    assert key_page.status_code == 400 and "control" in key_page.text
    invite_page = client.post(
        "/settings/members",
        data={"email": "x\u202e@example.com", "role": "read", "csrf_token": token},
    )
    assert invite_page.status_code == 400 and "control" in invite_page.text


def test_the_cli_refuses_them_and_escapes_stored_ones(admin, monkeypatch, database_url, tmp_path):
    app_id = admin.create_app("shop")
    key = admin.create_key(app_id, role="sdk", name="ci")
    gateway = admin.client.app.state.gateway  # type: ignore[attr-defined]
    stored = "ci\x1b[2K\x1b]0;owned\x07\u202e"

    async def store_raw() -> None:
        # A row written before names were checked.
        async with gateway.sessionmaker() as session:
            await session.execute(update(ApiKey).where(ApiKey.id == key["id"]).values(name=stored))
            await session.commit()

    admin.client.portal.call(store_raw)  # type: ignore[union-attr]
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)
    runner = CliRunner()
    for command in (
        ["keys", "list", "--app", "shop"],
        ["keys", "show", "--app", "shop", key["id"]],
    ):
        printed = runner.invoke(cli_app, command)
        assert printed.exit_code == 0, printed.output
        assert "\x1b" not in printed.output and "\x07" not in printed.output
        assert "\u202e" not in printed.output
        assert r"ci\x1b[2K\x1b]0;owned\x07\u202e" in printed.output
    refused = runner.invoke(
        cli_app, ["keys", "create", "--app", "shop", "--name", "a\x1bb", "--role", "sdk"]
    )
    assert refused.exit_code == 1 and "control" in refused.output
    refused = runner.invoke(cli_app, ["apps", "create", "a\u2066b"])
    assert refused.exit_code == 1 and "control" in refused.output
    refused = runner.invoke(
        cli_app,
        ["users", "create", "--email", "a\x1b@example.com", "--role", "read", "--password-stdin"],
        input="long enough password\n",
    )
    assert refused.exit_code == 1 and "control" in refused.output
