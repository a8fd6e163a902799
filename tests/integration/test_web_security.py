"""The dashboard over plain HTTP: headers, cookies, sessions and CSRF refusal."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.settings import Settings
from tests.conftest import add_user

PASSWORD = "correct horse battery"


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def web_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs in through the form; returns the CSRF token of the signed-in pages."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client.get("/").text)


def owner_with_app(client: TestClient) -> tuple[str, str]:
    """Signs in an owner who creates an app through the dashboard: (csrf token, keys url)."""
    add_user(client, "owner@example.com", "owner")
    token = web_sign_in(client, "owner@example.com")
    created = client.post(
        "/apps", data={"name": "shop", "csrf_token": token}, follow_redirects=False
    )
    assert created.status_code == 303
    return token, created.headers["location"]


def test_pages_forbid_framing_and_sniffing_and_allow_only_own_scripts(client):
    for path in ("/login", "/static/app.js", "/static/htmx.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_signed_in_pages_carry_the_same_headers_and_are_never_cached(client):
    _token, keys_url = owner_with_app(client)
    response = client.get(keys_url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_pages_load_no_script_from_another_origin(client):
    page = client.get("/login").text
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/static/") for source in sources)
    assert "<script>" not in page and " on" + "click=" not in page


def test_the_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(client):
    add_user(client, "a@example.com", "read")
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "a@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if "agentmark_session=" in value
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_when_served_over_https(settings: Settings):
    with TestClient(create_app(settings), base_url="https://gateway.example") as client:
        add_user(client, "s@example.com", "read")
        form = client.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        response = client.post(
            "/login",
            data={"email": "s@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
            follow_redirects=False,
        )
        cookie = next(
            value
            for value in response.headers.get_list("set-cookie")
            if "agentmark_session=" in value
        )
        assert "Secure" in cookie and "HttpOnly" in cookie


def test_each_sign_in_gets_a_new_session_and_the_old_one_ends(client):
    add_user(client, "b@example.com", "read")
    web_sign_in(client, "b@example.com")
    first = client.cookies["agentmark_session"]
    web_sign_in(client, "b@example.com")
    second = client.cookies["agentmark_session"]
    assert first != second
    client.cookies.clear()
    client.cookies.set("agentmark_session", first)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_sign_in_never_redirects_off_site(client):
    add_user(client, "c@example.com", "read")
    form = client.get("/login?next=//evil.example/x")
    assert "//evil.example" not in form.text
    response = client.post(
        "/login",
        data={
            "email": "c@example.com",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf(form.text),
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_a_wrong_password_is_a_clear_message_not_a_redirect(client):
    add_user(client, "d@example.com", "read")
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": "d@example.com", "password": "wrong", "csrf_token": csrf(form.text)},
    )
    assert response.status_code == 401
    assert "Invalid email or password" in response.text
    assert "agentmark_session" not in client.cookies


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client):
    token, keys_url = owner_with_app(client)
    forged = client.post(keys_url, data={"name": "forged", "role": "full-access"})
    assert forged.status_code == 403
    assert "did not come from this site" in forged.text
    wrong = client.post(keys_url, data={"name": "forged", "role": "sdk", "csrf_token": "0" * 64})
    assert wrong.status_code == 403
    as_json = client.post(keys_url, json={"name": "forged", "role": "sdk", "csrf_token": token})
    assert as_json.status_code == 403
    assert "No API keys yet" in client.get(keys_url).text


def test_htmx_requests_carry_the_token_in_a_header(client):
    token, keys_url = owner_with_app(client)
    response = client.post(
        keys_url,
        data={"name": "via-htmx", "role": "sdk"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert "API key created" in response.text


def test_a_token_from_another_session_does_not_work(client, settings: Settings):
    token, keys_url = owner_with_app(client)
    with TestClient(create_app(settings)) as other:
        other_token = web_sign_in(other, "owner@example.com")
    assert other_token != token
    response = client.post(keys_url, data={"name": "x", "role": "sdk", "csrf_token": other_token})
    assert response.status_code == 403


def test_sign_in_and_sign_out_forms_need_the_token_too(client):
    add_user(client, "e@example.com", "read")
    client.get("/login")
    refused = client.post("/login", data={"email": "e@example.com", "password": PASSWORD})
    assert refused.status_code == 403
    token = web_sign_in(client, "e@example.com")
    assert client.post("/logout").status_code == 403
    signed_out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert signed_out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_signed_out_visitors_are_sent_to_sign_in_and_back(client):
    response = client.get("/apps/app_x/settings/api-keys", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fapps%2Fapp_x%2Fsettings%2Fapi-keys"
    htmx = client.get("/apps/app_x/settings/api-keys/rows", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"].startswith("/login")


def test_dashboard_routes_stay_out_of_the_openapi_document(client):
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/apps", "/login", "/setup"))]
