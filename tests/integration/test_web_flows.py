"""Dashboard flows over plain HTTP: one-time links, show-once values, role refusals."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from agentmark_gateway.users import service as users_service
from tests.conftest import add_user

PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def web_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client.get("/").text)


def setup_link(client: TestClient) -> str:
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def issue() -> str:
        async with gateway.sessionmaker() as session:
            token = await users_service.issue_link(
                session, purpose="setup", user_id=None, ttl=users_service.SETUP_TTL
            )
            await session.commit()
            return token

    return f"/setup/{client.portal.call(issue)}"  # type: ignore[union-attr]


def test_the_setup_link_creates_the_owner_once(client):
    link = setup_link(client)
    form = client.get(link)
    assert form.status_code == 200
    weak = client.post(
        link, data={"email": "me@example.com", "password": "short", "csrf_token": csrf(form.text)}
    )
    assert weak.status_code == 400
    assert "at least 8 characters" in weak.text
    done = client.post(
        link,
        data={"email": "me@example.com", "password": PASSWORD, "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "agentmark_session" in client.cookies
    page = client.get("/")
    assert "No apps yet" in page.text and "me@example.com" in page.text

    assert client.get(link).status_code == 410
    again = client.post(
        link, data={"email": "two@example.com", "password": PASSWORD, "csrf_token": csrf(page.text)}
    )
    assert again.status_code == 410


def test_a_setup_link_is_dead_once_any_user_exists(client):
    link = setup_link(client)
    add_user(client, "cli-made@example.com", "owner")
    assert client.get(link).status_code == 410


def test_an_invitation_sets_the_password_once(client):
    add_user(client, "owner@example.com", "owner")
    token = web_sign_in(client, "owner@example.com")
    client.post("/apps", data={"name": "shop", "csrf_token": token}, follow_redirects=False)
    members = "/settings/members"  # the organization's, under no app
    invited = client.post(
        members,
        data={"email": "New@Example.com", "role": "write", "csrf_token": token},
        headers=HTMX,
    )
    assert invited.status_code == 200
    assert invited.headers["cache-control"] == "no-store"
    link = re.search(r'value="http://testserver(/invite/[^"]+)"', invited.text).group(1)
    assert link.split("/")[-1] not in client.get(members).text

    duplicate = client.post(
        members,
        data={"email": "new@example.com", "role": "read", "csrf_token": token},
        headers=HTMX,
    )
    assert duplicate.status_code == 409

    client.cookies.clear()
    form = client.get(link)
    assert "new@example.com" in form.text
    accepted = client.post(
        link,
        data={"password": "the new password", "csrf_token": csrf(form.text)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert "new@example.com" in client.get("/").text
    assert client.get(link).status_code == 410


def test_the_created_key_value_is_shown_once_uncached_and_nowhere_else(client):
    add_user(client, "owner@example.com", "owner")
    token = web_sign_in(client, "owner@example.com")
    keys_url = client.post(
        "/apps", data={"name": "shop", "csrf_token": token}, follow_redirects=False
    ).headers["location"]
    created = client.post(keys_url, data={"name": "ci", "role": "full-access", "csrf_token": token})
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    value = re.search(r'value="(sk_agentmark_[0-9A-Za-z]+)"', created.text).group(1)
    listed = client.get(keys_url)
    assert "ci" in listed.text and value not in listed.text
    key_id = re.search(r"/api-keys/(key_[^/]+)/edit", listed.text).group(1)
    for suffix in ("edit", "delete", "roll", ""):
        page = client.get(f"{keys_url}/{key_id}/{suffix}" if suffix else f"{keys_url}/rows")
        assert value not in page.text
    audit = client.get(keys_url.replace("api-keys", "audit-log"))
    assert "Created API key" in audit.text and value not in audit.text


def test_a_key_edit_with_no_role_keeps_the_key_and_says_what_is_missing(client):
    add_user(client, "owner@example.com", "owner")
    token = web_sign_in(client, "owner@example.com")
    keys_url = client.post(
        "/apps", data={"name": "shop", "csrf_token": token}, follow_redirects=False
    ).headers["location"]
    client.post(keys_url, data={"name": "k", "role": "sdk", "csrf_token": token})
    key_id = re.search(r"/api-keys/(key_[^/]+)/edit", client.get(keys_url).text).group(1)
    response = client.post(
        f"{keys_url}/{key_id}", data={"name": "k2", "csrf_token": token}, headers=HTMX
    )
    assert response.status_code == 400
    assert "Select a role or at least one permission" in response.text
    listed = client.get(keys_url).text
    assert 'data-key-name="k"' in listed and "k2" not in listed


def test_a_read_user_gets_403_from_every_key_change_and_sees_no_controls(client):
    admin_token = add_user(client, "owner@example.com", "owner")
    app_id = client.post(
        "/v1/apps", json={"name": "shop"}, headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["data"]["id"]
    key = client.post(
        "/v1/api-keys",
        json={"name": "existing", "role": "sdk"},
        headers={"Authorization": f"Bearer {admin_token}", "X-Agentmark-App-Id": app_id},
    ).json()["data"]
    add_user(client, "reader@example.com", "read")
    token = web_sign_in(client, "reader@example.com")
    keys_url = f"/apps/{app_id}/settings/api-keys"
    page = client.get(keys_url)
    assert page.status_code == 200 and "existing" in page.text
    assert "Create API Key" not in page.text and "/edit" not in page.text
    for url, form in (
        (keys_url, {"name": "x", "role": "sdk"}),
        (f"{keys_url}/{key['id']}", {"name": "x", "role": "sdk"}),
        (f"{keys_url}/{key['id']}/delete", {}),
        (f"{keys_url}/{key['id']}/roll", {"grace_seconds": "0"}),
        ("/apps", {"name": "other"}),
        ("/settings/members", {"email": "x@example.com", "role": "read"}),
    ):
        response = client.post(url, data={**form, "csrf_token": token})
        assert response.status_code == 403, url
    assert client.get(f"{keys_url}/new").status_code == 403


def test_a_key_of_another_app_is_a_404_page(client):
    add_user(client, "owner@example.com", "owner")
    token = web_sign_in(client, "owner@example.com")
    first = client.post(
        "/apps", data={"name": "one", "csrf_token": token}, follow_redirects=False
    ).headers["location"]
    second = client.post(
        "/apps", data={"name": "two", "csrf_token": token}, follow_redirects=False
    ).headers["location"]
    client.post(first, data={"name": "k", "role": "sdk", "csrf_token": token})
    key_id = re.search(r"/api-keys/(key_[^/]+)/edit", client.get(first).text).group(1)
    assert client.get(f"{second}/{key_id}/edit").status_code == 404
    refused = client.post(f"{second}/{key_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 404
    assert 'data-key-name="k"' in client.get(first).text


def test_the_retention_page_sets_and_resets_an_apps_retention_and_readers_only_look(client):
    admin_token = add_user(client, "owner@example.com", "owner")
    app_id = client.post(
        "/v1/apps", json={"name": "shop"}, headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["data"]["id"]
    api = {"Authorization": f"Bearer {admin_token}"}
    token = web_sign_in(client, "owner@example.com")
    url = f"/apps/{app_id}/settings/retention"

    page = client.get(url)
    assert page.status_code == 200 and 'value=""' in page.text
    saved = client.post(url, data={"retention_days": "45", "csrf_token": token})
    assert saved.status_code == 200 and "Saved." in saved.text and 'value="45"' in saved.text
    assert client.get(f"/v1/apps/{app_id}", headers=api).json()["data"]["retention_days"] == 45
    refused = client.post(url, data={"retention_days": "4000", "csrf_token": token})
    assert refused.status_code == 400 and 'aria-invalid="true"' in refused.text
    client.post(url, data={"retention_days": "", "csrf_token": token})
    assert client.get(f"/v1/apps/{app_id}", headers=api).json()["data"]["retention_days"] is None

    add_user(client, "reader@example.com", "read")
    token = web_sign_in(client, "reader@example.com")
    assert "readonly" in client.get(url).text
    assert client.post(url, data={"retention_days": "1", "csrf_token": token}).status_code == 403
