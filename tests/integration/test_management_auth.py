"""Sign-in, sessions, and organization roles on the management API."""

from __future__ import annotations

from tests.conftest import add_user, sign_in


def test_login_returns_a_token_and_me_names_the_user(client):
    token = add_user(client, "a@example.com", "admin")
    me = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["data"]["email"] == "a@example.com"
    assert me.json()["data"]["role"] == "admin"


def test_login_shape_matches_the_design(client):
    add_user(client, "b@example.com", "write", password="a long password")
    response = client.post(
        "/v1/auth/login", json={"email": "B@example.com", "password": "a long password"}
    )
    data = response.json()["data"]
    assert set(data) == {"token", "expires_at", "user"}
    assert set(data["user"]) == {"id", "email", "role"}


def test_wrong_password_is_401_and_repeated_failures_are_throttled(client):
    add_user(client, "c@example.com", "read")
    for _ in range(5):
        response = client.post(
            "/v1/auth/login", json={"email": "c@example.com", "password": "nope"}
        )
        assert response.status_code == 401
    response = client.post(
        "/v1/auth/login", json={"email": "c@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) > 0


def test_unknown_email_gives_the_same_answer_as_a_wrong_password(client):
    add_user(client, "d@example.com", "read")
    unknown = client.post("/v1/auth/login", json={"email": "x@example.com", "password": "nope"})
    wrong = client.post("/v1/auth/login", json={"email": "d@example.com", "password": "nope"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_logout_ends_the_session(client):
    token = add_user(client, "e@example.com", "read")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_api_keys_are_refused_on_management_routes(admin, client):
    key = admin.create_key(admin.create_app(), role="full-access")
    for header in (key["plaintext_key"], f"Bearer {key['plaintext_key']}"):
        response = client.get("/v1/apps", headers={"Authorization": header})
        assert response.status_code == 401
        assert key["plaintext_key"] not in response.text


def test_session_tokens_are_refused_on_data_routes(admin, client):
    app_id = admin.create_app()
    response = client.get(
        "/v1/templates",
        params={"path": "a.prompt.mdx"},
        headers={**admin.headers, "X-Agentmark-App-Id": app_id},
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Not authorized"


def test_read_users_list_keys_but_cannot_create_or_change_them(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    reader = {
        "Authorization": f"Bearer {add_user(client, 'r@example.com', 'read')}",
        "X-Agentmark-App-Id": app_id,
    }
    assert client.get("/v1/api-keys", headers=reader).status_code == 200
    assert (
        client.post("/v1/api-keys", json={"name": "n", "role": "sdk"}, headers=reader).status_code
        == 403
    )
    assert (
        client.patch(f"/v1/api-keys/{key['id']}", json={"name": "n"}, headers=reader).status_code
        == 403
    )
    assert client.delete(f"/v1/api-keys/{key['id']}", headers=reader).status_code == 403
    assert client.post(f"/v1/api-keys/{key['id']}/roll", json={}, headers=reader).status_code == 403


def test_write_users_manage_keys_but_not_apps_or_members(admin, client):
    app_id = admin.create_app()
    writer = {
        "Authorization": f"Bearer {add_user(client, 'w@example.com', 'write')}",
        "X-Agentmark-App-Id": app_id,
    }
    assert (
        client.post(
            "/v1/api-keys", json={"name": "n", "role": "full-access"}, headers=writer
        ).status_code
        == 201
    )
    assert client.post("/v1/apps", json={"name": "other"}, headers=writer).status_code == 403
    assert client.delete(f"/v1/apps/{app_id}", headers=writer).status_code == 403
    assert (
        client.post("/v1/members", json={"email": "z@example.com"}, headers=writer).status_code
        == 403
    )


def test_admin_cannot_remove_the_owner_but_manages_others(admin, client):
    admin_headers = {"Authorization": f"Bearer {add_user(client, 'ad@example.com', 'admin')}"}
    members = client.get("/v1/members", headers=admin_headers).json()["data"]
    owner = next(m for m in members if m["role"] == "owner")
    assert client.delete(f"/v1/members/{owner['id']}", headers=admin_headers).status_code == 403
    invited = client.post(
        "/v1/members", json={"email": "new@example.com", "role": "write"}, headers=admin_headers
    )
    assert invited.status_code == 201
    assert "/invite/" in invited.json()["data"]["invite_url"]
    member_id = invited.json()["data"]["id"]
    changed = client.patch(f"/v1/members/{member_id}", json={"role": "read"}, headers=admin_headers)
    assert changed.json()["data"]["role"] == "read"
    assert client.delete(f"/v1/members/{member_id}", headers=admin_headers).status_code == 204


def test_management_routes_need_a_session(client):
    for method, path in [
        ("GET", "/v1/apps"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/audit-log"),
        ("GET", "/v1/members"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "Missing auth header"


def test_sign_in_after_user_creation_with_a_new_password(client):
    add_user(client, "f@example.com", "owner", password="first password")
    assert sign_in(client, "f@example.com", "first password")
