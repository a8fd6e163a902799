def test_owner_creates_app_and_key_and_the_key_is_checked(admin, client, key_headers):
    app_id = admin.create_app("shop")
    key = admin.create_key(app_id, role="sdk")
    assert key["plaintext_key"].startswith("sk_agentmark_")
    assert key["permissions"] == ["trace.ingest", "template.read", "score.write"]
    listed = client.get("/v1/api-keys", headers={**admin.headers, "X-Agentmark-App-Id": app_id})
    assert listed.status_code == 200
    assert "plaintext_key" not in listed.text
    assert key["plaintext_key"] not in listed.text
