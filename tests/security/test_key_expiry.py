"""Key expiry: bounded (no date overflows into a 500), and final once a key is rolled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from agentmark_gateway.cli.main import app as cli_app
from tests.conftest import PEPPER
from tests.integration.test_web_flows import web_sign_in

# The calendar's last and first days, with offsets that carry them past its ends in UTC.
FAR_FUTURE = "9999-12-31T23:00:00-05:00"
FAR_PAST = "0001-01-01T00:30:00+05:00"


def _key_url(admin, key):
    return f"/v1/api-keys/{key['id']}", {**admin.headers, "X-Agentmark-App-Id": key["app_id"]}


@pytest.mark.parametrize("moment", [FAR_FUTURE, "2999-01-01T00:00:00Z"])
def test_an_expiry_beyond_ten_years_is_a_400_naming_the_field(admin, moment):
    app_id = admin.create_app()
    response = admin.client.post(
        "/v1/api-keys",
        json={"name": "far", "role": "sdk", "expires_at": moment},
        headers={**admin.headers, "X-Agentmark-App-Id": app_id},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_expiry" and "expires_at" in error["message"]
    key = admin.create_key(app_id, role="sdk")
    url, headers = _key_url(admin, key)
    edited = admin.client.patch(url, json={"expires_at": moment}, headers=headers)
    assert edited.status_code == 400, edited.text
    assert edited.json()["error"]["code"] == "invalid_expiry"
    # The calendar's first day is refused as the past, and any offset within bounds is kept.
    past = admin.client.patch(url, json={"expires_at": FAR_PAST}, headers=headers)
    assert past.status_code == 400, past.text
    assert past.json()["error"]["message"] == "expires_at must be in the future"
    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    local = soon.astimezone(timezone(timedelta(hours=-5))).isoformat()
    kept = admin.client.patch(url, json={"expires_at": local}, headers=headers)
    assert kept.status_code == 200, kept.text
    assert datetime.fromisoformat(kept.json()["data"]["expires_at"]) == soon


# Every datetime filter of the data API, at both ends of the calendar.
DATA_FILTERS = [
    ("/v1/traces", {"start_date": FAR_PAST, "end_date": FAR_FUTURE}),
    ("/v1/traces", {"end_date": "9999-12-31"}),
    ("/v1/spans", {"start_date": FAR_FUTURE}),
    ("/v1/sessions", {"start_date": FAR_PAST}),
    ("/v1/scores", {"start_date": FAR_PAST, "end_date": FAR_FUTURE}),
    ("/v1/scores", {"end_date": "9999-12-31"}),
    ("/v1/scores/aggregations", {"start_date": FAR_PAST, "end_date": "9999-12-31"}),
    ("/v1/metrics", {"end_date": FAR_PAST}),
    ("/v1/metrics", {"end_date": "0001-01-01T00:00:00Z"}),
    ("/v1/metrics", {"end_date": "0001-01-03"}),
    ("/v1/metrics", {"start_date": FAR_PAST, "end_date": FAR_FUTURE, "bucket": "day"}),
    ("/v1/experiments", {"start_date": FAR_PAST, "end_date": FAR_FUTURE}),
]


def test_extreme_dates_in_any_filter_never_give_500(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="full-access")
    answers = [
        (path, params, admin.client.get(path, params=params, headers=key_headers(key)))
        for path, params in DATA_FILTERS
    ]
    for since in (FAR_PAST, FAR_FUTURE, "9999-12-31", "0001-01-01"):
        response = admin.client.get("/v1/audit-log", params={"since": since}, headers=admin.headers)
        answers.append(("/v1/audit-log", {"since": since}, response))
    failures = [(p, q, r.status_code) for p, q, r in answers if r.status_code not in (200, 400)]
    assert not failures
    refused = [r.json()["error"]["code"] for _, _, r in answers if r.status_code == 400]
    assert set(refused) <= {"invalid_query_params"}


# -- a rolled key's retirement is final --------------------------------------


def _roll(admin, key, grace_seconds=3600):
    url, headers = _key_url(admin, key)
    response = admin.client.post(
        f"{url}/roll", json={"grace_seconds": grace_seconds}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


@pytest.mark.parametrize("expires_at", [None, "later"])
def test_a_rolled_key_cannot_be_kept_alive_by_an_edit(admin, key_headers, expires_at):
    key = admin.create_key(admin.create_app(), role="full-access")
    ends = _roll(admin, key)["previous_key_expires_at"]
    if expires_at == "later":
        expires_at = (datetime.fromisoformat(ends) + timedelta(days=30)).isoformat()
    url, headers = _key_url(admin, key)
    response = admin.client.patch(url, json={"expires_at": expires_at}, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_expiry" and "rolled" in error["message"]
    shown = admin.client.get(url, headers=headers).json()["data"]
    assert datetime.fromisoformat(shown["expires_at"]) == datetime.fromisoformat(ends)
    # Retiring it sooner (and renaming it) stays allowed; the key works until then.
    sooner = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    response = admin.client.patch(
        url, json={"name": "old ci key", "expires_at": sooner.isoformat()}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert datetime.fromisoformat(response.json()["data"]["expires_at"]) == sooner
    assert admin.client.get("/v1/traces", headers=key_headers(key)).status_code == 200
    # A key that was never rolled may still drop its expiry.
    other = admin.create_key(key["app_id"], role="sdk", expires_at=sooner.isoformat())
    url, headers = _key_url(admin, other)
    response = admin.client.patch(url, json={"expires_at": None}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["expires_at"] is None


def test_the_dashboard_cannot_give_a_rolled_key_a_new_expiry(client, admin):
    key = admin.create_key(admin.create_app("shop"), role="sdk", name="ci")
    ends = _roll(admin, key)["previous_key_expires_at"]
    token = web_sign_in(client, "owner@example.com")
    keys_url = f"/apps/{key['app_id']}/settings/api-keys"
    for choice in ("never", "365d"):
        response = client.post(
            f"{keys_url}/{key['id']}",
            data={"name": "old", "role": "sdk", "expires_in": choice, "csrf_token": token},
        )
        assert response.status_code == 400, response.text
        assert "rolled" in response.text
    url, headers = _key_url(admin, key)
    shown = admin.client.get(url, headers=headers).json()["data"]
    assert datetime.fromisoformat(shown["expires_at"]) == datetime.fromisoformat(ends)


def test_the_cli_cannot_give_a_rolled_key_a_new_expiry(admin, monkeypatch, database_url, tmp_path):
    key = admin.create_key(admin.create_app("shop"), role="sdk", name="ci")
    _roll(admin, key)
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)
    result = CliRunner().invoke(
        cli_app, ["keys", "edit", "--app", "shop", key["id"], "--no-expiry"]
    )
    assert result.exit_code == 1, result.output
    assert "rolled" in result.output
