from __future__ import annotations

from unittest.mock import ANY


def test_apps_create_list_get_rename_delete(admin, client):
    app_id = admin.create_app("alpha")
    assert app_id.startswith("app_")
    listed = client.get("/v1/apps", headers=admin.headers).json()
    assert [a["name"] for a in listed["data"]] == ["alpha"]
    assert client.get(f"/v1/apps/{app_id}", headers=admin.headers).json()["data"]["name"] == "alpha"
    renamed = client.patch(f"/v1/apps/{app_id}", json={"name": "beta"}, headers=admin.headers)
    assert renamed.json()["data"]["name"] == "beta"
    assert client.delete(f"/v1/apps/{app_id}", headers=admin.headers).status_code == 204
    assert client.get(f"/v1/apps/{app_id}", headers=admin.headers).status_code == 404


def test_app_names_are_unique(admin, client):
    admin.create_app("alpha")
    other = admin.create_app("gamma")
    response = client.post("/v1/apps", json={"name": "alpha"}, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_app_name"
    response = client.patch(f"/v1/apps/{other}", json={"name": "alpha"}, headers=admin.headers)
    assert response.status_code == 409


def test_deleting_an_app_deletes_its_keys_with_immediate_effect(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="full-access")
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": app_id}
    probe = {"path": "missing.prompt.mdx"}
    assert client.get("/v1/templates", params=probe, headers=headers).status_code == 404
    assert client.delete(f"/v1/apps/{app_id}", headers=admin.headers).status_code == 204
    assert client.get("/v1/templates", params=probe, headers=headers).status_code == 401
    events = client.get("/v1/audit-log", params={"app_id": app_id}, headers=admin.headers).json()
    assert events["data"][0]["action"] == "app.delete"


def test_an_apps_retention_is_set_at_creation_changed_reset_and_audited(admin, client):
    created = client.post(
        "/v1/apps", json={"name": "kept", "retention_days": 90}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    app = created.json()["data"]
    assert app["retention_days"] == 90
    url = f"/v1/apps/{app['id']}"

    changed = client.patch(url, json={"retention_days": 0}, headers=admin.headers)
    assert changed.json()["data"] == {**app, "retention_days": 0, "updated_at": ANY}
    renamed = client.patch(url, json={"name": "kept-too"}, headers=admin.headers).json()["data"]
    assert renamed["retention_days"] == 0  # a rename leaves it alone
    reset = client.patch(url, json={"retention_days": None}, headers=admin.headers)
    assert reset.json()["data"]["retention_days"] is None
    assert client.get(url, headers=admin.headers).json()["data"]["retention_days"] is None

    events = client.get(
        "/v1/audit-log", params={"app_id": app["id"]}, headers=admin.headers
    ).json()["data"]
    changes = [e["details"] for e in events if e["action"] == "app.retention"]
    assert [(c["before"], c["after"]) for c in reversed(changes)] == [
        ({"retention_days": 90}, {"retention_days": 0}),
        ({"retention_days": 0}, {"retention_days": None}),
    ]


def test_an_invalid_retention_or_an_empty_change_is_a_400(admin, client):
    app_id = admin.create_app()
    for body in ({"retention_days": -1}, {"retention_days": 3651}, {"retention_days": "30"}, {}):
        response = client.patch(f"/v1/apps/{app_id}", json=body, headers=admin.headers)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_request_body"
    app = client.get(f"/v1/apps/{app_id}", headers=admin.headers).json()["data"]
    assert app["retention_days"] is None
