"""Behind a TLS-terminating proxy: https as a trusted proxy reports it, Secure cookies, HSTS."""

from __future__ import annotations

from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.settings import Settings
from tests.conftest import add_user
from tests.integration.test_web_security import PASSWORD, csrf

PROXY = ("10.0.0.2", 40000)
STRANGER = ("203.0.113.9", 40000)
OVER_TLS = {"X-Forwarded-Proto": "https"}


def _with(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


def _cookies_of_a_sign_in(client: TestClient, email: str) -> list[str]:
    """Every Set-Cookie of the sign-in form and of the sign-in itself."""
    add_user(client, email, "read")
    form = client.get("/login")
    # The test client talks plain HTTP, so it holds back Secure cookies: hand it over.
    presession = form.headers["set-cookie"].partition(";")[0].partition("=")[2]
    client.cookies.set("agentmark_presession", presession)
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return [*form.headers.get_list("set-cookie"), *response.headers.get_list("set-cookie")]


def _set(cookies: list[str], name: str) -> str:
    return next(
        value for value in cookies if value.startswith(f"{name}=") and "Max-Age=0" not in value
    )


def test_https_reported_by_a_trusted_proxy_makes_cookies_secure_and_adds_hsts(settings):
    trusting = _with(settings, trusted_proxies=["10.0.0.0/8"])
    with TestClient(create_app(trusting), client=PROXY, headers=OVER_TLS) as client:
        cookies = _cookies_of_a_sign_in(client, "p@example.com")
        assert "Secure" in _set(cookies, "agentmark_presession")
        assert "Secure" in _set(cookies, "agentmark_session")
        for path in ("/login", "/health", "/v1/openapi.json"):
            answer = client.get(path)
            assert answer.headers["strict-transport-security"].startswith("max-age="), path
        # The key check's own answers, sent in front of the framework, too.
        refused = client.get("/v1/templates", params={"path": "a.prompt.mdx"})
        assert refused.status_code == 401
        assert refused.headers["strict-transport-security"].startswith("max-age=")
    # The same header from a peer that is not a trusted proxy, or with none
    # configured, is what any client could write: it changes nothing.
    for peer, configured in ((STRANGER, trusting), (PROXY, settings)):
        with TestClient(create_app(configured), client=peer, headers=OVER_TLS) as client:
            cookies = _cookies_of_a_sign_in(client, f"u{peer[0]}@example.com")
            assert "Secure" not in _set(cookies, "agentmark_presession")
            assert "Secure" not in _set(cookies, "agentmark_session")
            assert "strict-transport-security" not in client.get("/login").headers
            assert "strict-transport-security" not in client.get("/health").headers


def test_an_https_public_url_makes_cookies_secure_whatever_the_request_says(settings):
    settings = _with(settings, public_url="https://gateway.example")
    with TestClient(create_app(settings)) as client:
        cookies = _cookies_of_a_sign_in(client, "h@example.com")
        assert "Secure" in _set(cookies, "agentmark_presession")
        assert "Secure" in _set(cookies, "agentmark_session")
