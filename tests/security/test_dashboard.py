"""Dashboard checks beyond tests/integration/test_web_security.py, walking every page
and every form the dashboard has, so that a new one is covered the day it appears:
CSRF refusal on every state-changing route, session fixation, cookie flags,
framing and content-type headers on every page, and no key value on any page but
the one-time dialog."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.app import create_app
from agentmark_gateway.apps.models import App
from agentmark_gateway.audit.models import AuditEvent
from agentmark_gateway.permissions.enforce import all_routes
from agentmark_gateway.settings import Settings
from agentmark_gateway.users.models import User
from agentmark_gateway.web.route import WebRoute
from tests.conftest import add_user, sign_in
from tests.integration.test_web_security import PASSWORD, csrf, web_sign_in

SESSION = "agentmark_session"
PRESESSION = "agentmark_presession"


def _web_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in all_routes(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, WebRoute):
            routes += [(method, route.path) for method in sorted(route.methods or ())]
    return sorted(routes)


@pytest.fixture
def dashboard(client: TestClient) -> dict[str, Any]:
    """An owner signed in through the form, an app, a key made in the dashboard, a member."""
    add_user(client, "owner@example.com", "owner")
    owner_id = _user_id(client, "owner@example.com")
    token = web_sign_in(client, "owner@example.com")
    created = client.post(
        "/apps", data={"name": "shop", "csrf_token": token}, follow_redirects=False
    )
    app_id = created.headers["location"].split("/")[2]
    keys = f"/apps/{app_id}/settings/api-keys"
    dialog = client.post(keys, data={"name": "ci", "role": "sdk", "csrf_token": token})
    assert dialog.status_code == 200, dialog.text
    value = re.search(r'value="(sk_agentmark_[0-9A-Za-z]+)"', dialog.text)
    assert value, "the one-time dialog shows no key"
    invited = client.post(
        "/settings/members",
        data={"email": "member@example.com", "role": "read", "csrf_token": token},
    )
    assert invited.status_code == 200, invited.text
    return {
        "token": token,
        "app_id": app_id,
        "key_value": value.group(1),
        "key_id": _key_id(client, app_id),
        "owner_id": owner_id,
        "member_id": _user_id(client, "member@example.com"),
        "dialog": dialog,
    }


def _query(client: TestClient, statement: Any) -> Any:
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def run() -> Any:
        async with gateway.sessionmaker() as session:
            return await session.scalar(statement)

    return client.portal.call(run)  # type: ignore[union-attr]


def _user_id(client: TestClient, email: str) -> str:
    return str(_query(client, select(User.id).where(User.email == email)))


def _key_id(client: TestClient, app_id: str) -> str:
    return str(_query(client, select(ApiKey.id).where(ApiKey.app_id == app_id)))


def _state(client: TestClient) -> tuple[int, ...]:
    return tuple(
        _query(client, select(func.count()).select_from(model))
        for model in (App, ApiKey, User, AuditEvent)
    )


def _fill(path: str, values: dict[str, Any]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    return path


def _targets(dashboard: dict[str, Any]) -> dict[str, Any]:
    return {
        "app_id": dashboard["app_id"],
        "key_id": dashboard["key_id"],
        "user_id": dashboard["member_id"],
        "token": "not-a-real-link",
    }


# --- CSRF ----------------------------------------------------------------------------


def test_every_dashboard_form_refuses_a_post_without_its_csrf_token(client, dashboard):
    posts = [path for method, path in _web_routes(client) if method == "POST"]
    assert len(posts) >= 10, posts
    before = _state(client)
    for path in posts:
        target = _fill(path, _targets(dashboard))
        for data in ({}, {"csrf_token": ""}, {"csrf_token": "0" * 64}):
            refused = client.post(target, data={"name": "forged", "role": "read", **data})
            assert refused.status_code == 403, f"{path} {data}: {refused.status_code}"
            assert "did not come from this site" in refused.text
        htmx = client.post(target, headers={"HX-Request": "true", "X-CSRF-Token": "f" * 64})
        assert htmx.status_code == 403, path
    assert _state(client) == before, "a refused form changed something"
    assert client.get("/", follow_redirects=False).status_code == 303  # still signed in


def test_the_token_from_before_sign_in_does_not_work_after_it(client):
    add_user(client, "a@example.com", "owner")
    before = csrf(client.get("/login").text)
    after = web_sign_in(client, "a@example.com")
    assert before != after
    refused = client.post("/apps", data={"name": "forged", "csrf_token": before})
    assert refused.status_code == 403


def test_a_token_dies_with_its_session(client, settings):
    add_user(client, "b@example.com", "owner")
    old_token = web_sign_in(client, "b@example.com")
    old_cookie = client.cookies[SESSION]
    client.post("/logout", data={"csrf_token": old_token})
    with TestClient(create_app(settings)) as replay:
        replay.cookies.set(SESSION, old_cookie)
        response = replay.post(
            "/apps", data={"name": "replayed", "csrf_token": old_token}, follow_redirects=False
        )
        assert response.status_code in (303, 403)
        assert response.headers.get("location", "/login").startswith("/login")
    assert _query(client, select(func.count()).select_from(App)) == 0


def test_a_cross_site_post_with_the_victims_cookie_but_no_token_changes_nothing(client, dashboard):
    """What a forged form on another site can send: the cookie rides along, the token cannot."""
    before = _state(client)
    forged = client.post(
        f"/apps/{dashboard['app_id']}/settings/api-keys",
        data={"name": "stolen", "role": "full-access"},
        headers={"Origin": "https://evil.example", "Referer": "https://evil.example/x"},
    )
    assert forged.status_code == 403
    assert _state(client) == before


# --- sessions and cookies -------------------------------------------------------------


def test_a_planted_session_cookie_is_replaced_and_ended_at_sign_in(client):
    """Session fixation: an attacker's own session id, planted in the victim's browser, is
    neither kept nor left valid once the victim signs in."""
    add_user(client, "attacker@example.com", "read")
    add_user(client, "victim@example.com", "owner")
    planted = sign_in(client, "attacker@example.com", PASSWORD)
    client.cookies.set(SESSION, planted)
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "victim@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    fresh = _cookie(response, SESSION)
    assert fresh.value and fresh.value != planted
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {planted}"})
    assert me.status_code == 401, "the planted session still works"


def test_an_unknown_session_cookie_is_never_adopted(client):
    add_user(client, "c@example.com", "owner")
    client.cookies.set(SESSION, "ses_chosen-by-the-attacker")
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "c@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert _cookie(response, SESSION).value != "ses_chosen-by-the-attacker"


def _cookie(response: Any, name: str) -> Any:
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar[name]
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def test_session_and_pre_session_cookies_are_host_only_httponly_lax_and_bounded(client, settings):
    add_user(client, "d@example.com", "read")
    form = client.get("/login")
    presession = _cookie(form, PRESESSION)
    assert presession["httponly"] and presession["samesite"].lower() == "lax"
    assert presession["path"] == "/" and not presession["domain"]
    response = client.post(
        "/login",
        data={"email": "d@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    session = _cookie(response, SESSION)
    assert session["httponly"] and session["samesite"].lower() == "lax"
    assert session["path"] == "/" and not session["domain"]
    assert int(session["max-age"]) == settings.session_ttl_seconds
    assert _cookie(response, PRESESSION)["max-age"] == "0", "the pre-session outlives sign-in"
    token = csrf(client.get("/").text)
    signed_out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert _cookie(signed_out, SESSION)["max-age"] == "0"


def test_the_session_token_is_stored_only_as_a_digest(client):
    from agentmark_gateway.auth.models import UserSession
    from agentmark_gateway.auth.tokens import token_digest

    add_user(client, "e@example.com", "read")
    web_sign_in(client, "e@example.com")
    value = client.cookies[SESSION]
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def digests() -> list[str]:
        async with gateway.sessionmaker() as session:
            return list(await session.scalars(select(UserSession.token_digest)))

    stored = client.portal.call(digests)  # type: ignore[union-attr]
    assert token_digest(value) in stored
    assert not any(value in digest or value.removeprefix("ses_") in digest for digest in stored)


# --- headers on every page ------------------------------------------------------------


def test_every_dashboard_page_forbids_framing_and_sniffing_and_says_it_is_html(client, dashboard):
    pages = [path for method, path in _web_routes(client) if method == "GET"]
    assert len(pages) >= 15, pages
    values = _targets(dashboard)
    for path in pages:
        for variant in (_fill(path, values), _fill(path, {**values, "app_id": "app_missing"})):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(variant, headers=headers, follow_redirects=False)
                if response.status_code in (302, 303, 307) or "hx-redirect" in response.headers:
                    continue
                where = f"{variant} {headers}: {response.status_code}"
                assert response.headers["content-type"] == "text/html; charset=utf-8", where
                assert response.headers["x-frame-options"] == "DENY", where
                assert response.headers["x-content-type-options"] == "nosniff", where
                assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
                if variant.startswith("/apps/"):
                    assert response.headers["cache-control"] == "no-store", where


def test_error_pages_and_static_files_carry_the_same_headers(client):
    for path, media in (
        ("/static/app.js", "text/javascript"),
        ("/static/htmx.min.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ):
        response = client.get(path)
        assert response.headers["content-type"].split(";")[0] == media, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    missing = client.get("/static/../../settings.py")
    assert missing.status_code == 404
    link = client.get("/setup/not-a-link")
    assert link.status_code == 410
    assert link.headers["x-frame-options"] == "DENY"
    assert link.headers["content-type"] == "text/html; charset=utf-8"


def test_api_answers_are_json_and_never_html(client, admin):
    for path, headers in (
        ("/v1/traces", {}),
        ("/v1/api-keys", admin.headers),
        ("/v1/nothing-here", {}),
        ("/v1/traces/%3Cscript%3E", {"Authorization": "x", "X-Agentmark-App-Id": "y"}),
    ):
        response = client.get(path, headers=headers)
        assert response.headers["content-type"] == "application/json", path
        assert "<script>" not in response.text


# --- the key value ------------------------------------------------------------------


def _secret_parts(value: str) -> list[str]:
    """The value, and its random middle that no display form may show."""
    return [value, value[len(keygen.PREFIX) + 4 : -4]]


def _every_page(client: TestClient, dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    seen = []
    for method, path in _web_routes(client):
        if method != "GET" or "{token}" in path:
            continue
        target = _fill(path, _targets(dashboard))
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(target, headers=headers)
            seen.append((f"{target} {headers}", response.text))
    return seen


def test_no_page_but_the_one_time_dialog_shows_a_key_value(client, dashboard):
    value = dashboard["key_value"]
    assert value in dashboard["dialog"].text
    assert dashboard["dialog"].headers["cache-control"] == "no-store"
    keys = f"/apps/{dashboard['app_id']}/settings/api-keys"
    rolled = client.post(
        f"{keys}/{dashboard['key_id']}/roll",
        data={"grace_seconds": "3600", "csrf_token": dashboard["token"]},
    )
    new_value = re.search(r'value="(sk_agentmark_[0-9A-Za-z]+)"', rolled.text).group(1)
    assert new_value != value and value not in rolled.text
    pages = _every_page(client, dashboard)
    assert len(pages) >= 20
    for where, text in pages:
        for secret in (*_secret_parts(value), *_secret_parts(new_value)):
            assert secret not in text, f"{where} shows a key value"


def test_a_failed_create_form_does_not_echo_another_keys_value(client, dashboard):
    keys = f"/apps/{dashboard['app_id']}/settings/api-keys"
    duplicate = client.post(
        keys, data={"name": "ci", "role": "sdk", "csrf_token": dashboard["token"]}
    )
    assert duplicate.status_code == 409
    assert "sk_agentmark_" not in duplicate.text.replace(keygen.PREFIX + "…", "")
    for secret in _secret_parts(dashboard["key_value"]):
        assert secret not in duplicate.text


def test_values_of_keys_made_through_the_api_appear_on_no_page(client, dashboard, admin_headers):
    created = client.post(
        "/v1/api-keys",
        json={"name": "from-api", "role": "full-access"},
        headers={**admin_headers, "X-Agentmark-App-Id": dashboard["app_id"]},
    )
    value = created.json()["data"]["plaintext_key"]
    for where, text in _every_page(client, dashboard):
        for secret in _secret_parts(value):
            assert secret not in text, where


@pytest.fixture
def admin_headers(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_in(client, 'owner@example.com', PASSWORD)}"}


def test_over_https_every_cookie_set_with_a_value_is_secure(settings: Settings):
    with TestClient(create_app(settings), base_url="https://gateway.example") as client:
        add_user(client, "f@example.com", "owner")
        form = client.get("/login")
        response = client.post(
            "/login",
            data={"email": "f@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
            follow_redirects=False,
        )
        for answer in (form, response):
            for header in answer.headers.get_list("set-cookie"):
                if "Max-Age=0" not in header:  # an expiry carries no value to protect
                    assert "Secure" in header, header
