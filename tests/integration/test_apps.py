from __future__ import annotations


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
