"""The key lifecycle through the management API, and its effect on the very next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentmark_gateway.api_keys.models import ApiKey

# A data route that a template.read key may call: 404 for a missing template
# means "let through", 403 "wrong permissions", 401 "not this key".
PROBE = "/v1/templates"
PROBE_PARAMS = {"path": "missing.prompt.mdx"}


def probe(client, key) -> int:
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]}
    return client.get(PROBE, params=PROBE_PARAMS, headers=headers).status_code


def mgmt(admin, app_id):
    return {**admin.headers, "X-Agentmark-App-Id": app_id}


def test_create_returns_the_value_once_and_lists_never_show_it(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", name="ci")
    assert set(key) >= {
        "id",
        "name",
        "app_id",
        "role",
        "permissions",
        "key_prefix",
        "created_by",
        "created_at",
        "updated_at",
        "last_used_at",
        "expires_at",
        "plaintext_key",
    }
    value = key["plaintext_key"]
    assert key["key_prefix"] == f"sk_agentmark_{value[13:17]}…{value[-4:]}"
    assert key["created_by"] == "owner@example.com"
    listed = client.get("/v1/api-keys", headers=mgmt(admin, app_id))
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id))
    for response in (listed, shown):
        assert response.status_code == 200
        assert value not in response.text and "plaintext_key" not in response.text
        assert "digest" not in response.text
    assert listed.json()["pagination"] == {"total": 1, "limit": 50, "offset": 0}


def test_create_response_is_not_cached(admin, client):
    app_id = admin.create_app()
    response = client.post(
        "/v1/api-keys", json={"name": "x", "role": "sdk"}, headers=mgmt(admin, app_id)
    )
    assert response.headers["cache-control"] == "no-store"


def test_neither_role_nor_permission_is_refused(admin, client):
    app_id = admin.create_app()
    response = client.post("/v1/api-keys", json={"name": "x"}, headers=mgmt(admin, app_id))
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_permissions",
            "message": "Select a role or at least one permission",
        }
    }
    response = client.post(
        "/v1/api-keys",
        json={"name": "x", "role": "custom", "permissions": []},
        headers=mgmt(admin, app_id),
    )
    assert response.json()["error"]["code"] == "invalid_permissions"


def test_unknown_permission_is_named(admin, client):
    app_id = admin.create_app()
    response = client.post(
        "/v1/api-keys",
        json={"name": "x", "permissions": ["trace.read", "traces.destroy"]},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 400
    assert "traces.destroy" in response.json()["error"]["message"]


def test_trace_write_alias_is_stored_as_trace_ingest(admin):
    key = admin.create_key(admin.create_app(), permissions=["trace.write"])
    assert key["role"] == "custom"
    assert key["permissions"] == ["trace.ingest"]


def test_duplicate_name_in_one_app_is_a_conflict_but_fine_in_another(admin, client):
    first, second = admin.create_app(), admin.create_app()
    admin.create_key(first, role="sdk", name="prod")
    response = client.post(
        "/v1/api-keys", json={"name": "prod", "role": "sdk"}, headers=mgmt(admin, first)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_api_key_name"
    admin.create_key(second, role="sdk", name="prod")


@pytest.mark.parametrize("name", ["", "x" * 256])
def test_name_must_be_1_to_255_characters(admin, client, name):
    app_id = admin.create_app()
    response = client.post(
        "/v1/api-keys", json={"name": name, "role": "sdk"}, headers=mgmt(admin, app_id)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request_body"


def test_a_deleted_key_frees_its_name(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", name="prod")
    assert (
        client.delete(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).status_code == 204
    )
    admin.create_key(app_id, role="sdk", name="prod")


def test_edit_changes_permissions_on_the_very_next_request_with_the_same_value(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    assert probe(client, key) == 404
    response = client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"permissions": ["trace.read"]},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 200
    edited = response.json()["data"]
    assert edited["role"] == "custom" and edited["permissions"] == ["trace.read"]
    assert edited["key_prefix"] == key["key_prefix"]
    assert edited["updated_at"] >= key["updated_at"]
    assert probe(client, key) == 403
    client.patch(
        f"/v1/api-keys/{key['id']}", json={"role": "full-access"}, headers=mgmt(admin, app_id)
    )
    assert probe(client, key) == 404


def test_edit_to_nothing_is_refused_and_changes_nothing(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    response = client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"role": "custom", "permissions": []},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 400
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).json()["data"]
    assert shown["role"] == "sdk"


def test_delete_gives_401_on_the_very_next_request(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    assert probe(client, key) == 404
    assert (
        client.delete(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).status_code == 204
    )
    assert probe(client, key) == 401
    assert client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).status_code == 404


def test_roll_without_grace_ends_the_old_key_now(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", name="prod")
    response = client.post(f"/v1/api-keys/{key['id']}/roll", json={}, headers=mgmt(admin, app_id))
    assert response.status_code == 201
    new = response.json()["data"]
    assert new["plaintext_key"] != key["plaintext_key"]
    assert (new["name"], new["role"], new["permissions"]) == ("prod", "sdk", key["permissions"])
    assert probe(client, key) == 401
    assert probe(client, new) == 404


def test_roll_with_grace_keeps_both_keys_working_then_only_the_new(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["template.read", "trace.read"])
    response = client.post(
        f"/v1/api-keys/{key['id']}/roll", json={"grace_seconds": 3600}, headers=mgmt(admin, app_id)
    )
    new = response.json()["data"]
    ends = datetime.fromisoformat(new["previous_key_expires_at"])
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    assert new["permissions"] == ["trace.read", "template.read"]
    assert probe(client, key) == 404 and probe(client, new) == 404
    listed = client.get("/v1/api-keys", headers=mgmt(admin, app_id)).json()["data"]
    old = next(k for k in listed if k["id"] == key["id"])
    assert old["expiring_soon"] is True and old["expires_at"] is not None


def test_roll_grace_is_bounded_to_seven_days(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    response = client.post(
        f"/v1/api-keys/{key['id']}/roll",
        json={"grace_seconds": 7 * 24 * 3600 + 1},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 400


def test_roll_keeps_the_expiry(admin, client):
    app_id = admin.create_app()
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    key = admin.create_key(app_id, role="sdk", expires_at=expires.isoformat())
    new = client.post(
        f"/v1/api-keys/{key['id']}/roll", json={"grace_seconds": 60}, headers=mgmt(admin, app_id)
    ).json()["data"]
    assert datetime.fromisoformat(new["expires_at"]) == expires


def test_expired_key_gets_401(admin, client, settings):
    app_id = admin.create_app()
    soon = datetime.now(UTC) + timedelta(seconds=1)
    key = admin.create_key(app_id, role="sdk", expires_at=soon.isoformat())
    import time

    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert probe(client, key) == 401


def test_expiry_in_the_past_is_refused(admin, client):
    app_id = admin.create_app()
    response = client.post(
        "/v1/api-keys",
        json={"name": "x", "role": "sdk", "expires_at": "2001-01-01T00:00:00Z"},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 400


def test_key_of_another_app_gets_the_same_401(admin, client):
    first, second = admin.create_app(), admin.create_app()
    key = admin.create_key(first, role="full-access")
    response = client.get(
        PROBE,
        params=PROBE_PARAMS,
        headers={"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": second},
    )
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}


def test_last_used_is_written_in_a_batch_not_per_request(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    for _ in range(5):
        probe(client, key)
    gateway = client.app.state.gateway

    async def stored() -> datetime | None:
        async with gateway.sessionmaker() as session:
            row = await session.get(ApiKey, key["id"])
            return None if row is None else row.last_used_at

    assert client.portal.call(stored) is None  # nothing written yet: no write per request
    # A read writes this process's pending time first, so it is live.
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).json()["data"]
    used = datetime.fromisoformat(shown["last_used_at"])
    assert datetime.now(UTC) - used < timedelta(seconds=30)
    assert client.portal.call(stored) == used


def test_every_change_is_in_the_audit_log_without_values(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", name="worker")
    client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"permissions": ["trace.read", "score.write"]},
        headers=mgmt(admin, app_id),
    )
    rolled = client.post(
        f"/v1/api-keys/{key['id']}/roll", json={"grace_seconds": 60}, headers=mgmt(admin, app_id)
    ).json()["data"]
    client.delete(f"/v1/api-keys/{rolled['id']}", headers=mgmt(admin, app_id))
    response = client.get("/v1/audit-log", params={"app_id": app_id}, headers=admin.headers)
    events = response.json()["data"]
    assert [e["action"] for e in events] == [
        "api_key.delete",
        "api_key.roll",
        "api_key.update",
        "api_key.create",
        "app.create",
    ]
    update = events[2]
    assert update["actor"] == "owner@example.com"
    assert update["details"]["permissions_added"] == ["trace.read"]
    assert update["details"]["permissions_removed"] == ["template.read", "trace.ingest"]
    assert update["details"]["changes"]["permissions"]["before"] == [
        "trace.ingest",
        "template.read",
        "score.write",
    ]
    for value in (key["plaintext_key"], rolled["plaintext_key"]):
        assert value not in response.text
    only_updates = client.get(
        "/v1/audit-log",
        params={"app_id": app_id, "action": "api_key.update"},
        headers=admin.headers,
    ).json()["data"]
    assert len(only_updates) == 1
