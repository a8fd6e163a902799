"""/v1/templates and /v1/prompts: publishing, reading and deleting built templates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"
HAIKU = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
TRIAGE = json.loads((FIXTURES / "agents" / "triage.prompt.mdx.json").read_text())


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app("shop")
    return key_headers(admin.create_key(app_id, role="full-access"))


def put(client, headers, path, body):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.put("/v1/templates", params={"path": path}, content=content, headers=headers)


def get(client, headers, path, **params):
    return client.get("/v1/templates", params={"path": path, **params}, headers=headers)


def test_published_template_is_served_back_exactly(client, headers):
    created = put(client, headers, "haiku.prompt.mdx", HAIKU)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["path"] == "haiku.prompt.mdx"
    assert created.json()["data"]["kind"] == "template"

    response = get(client, headers, "haiku.prompt.mdx", promptKind="text")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": HAIKU}


def test_publishing_the_same_path_again_replaces_it_with_200(client, headers):
    assert put(client, headers, "haiku.prompt.mdx", HAIKU).status_code == 201
    replaced = put(client, headers, "haiku.prompt.mdx", TRIAGE)
    assert replaced.status_code == 200
    data = replaced.json()["data"]
    assert data["updated_at"] >= data["created_at"]
    assert get(client, headers, "haiku.prompt.mdx").json()["data"] == TRIAGE


def test_templates_live_in_folders_and_may_end_in_json(client, headers):
    assert put(client, headers, "agents/triage.prompt.mdx", TRIAGE).status_code == 201
    assert put(client, headers, "agents/triage.prompt.json", HAIKU).status_code == 201
    assert get(client, headers, "agents/triage.prompt.mdx").json()["data"] == TRIAGE
    assert get(client, headers, "agents/triage.prompt.json").json()["data"] == HAIKU


def test_a_gzipped_template_body_is_accepted(client, headers):
    body = gzip.compress(json.dumps(HAIKU).encode())
    response = client.put(
        "/v1/templates",
        params={"path": "haiku.prompt.mdx"},
        content=body,
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 201, response.text
    assert get(client, headers, "haiku.prompt.mdx").json()["data"] == HAIKU


def test_an_unknown_template_is_404_template_not_found(client, headers):
    response = get(client, headers, "missing.prompt.mdx")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "template_not_found"


BAD_PATHS = [
    pytest.param("../x.prompt.mdx", "'..'", id="parent"),
    pytest.param("agents/../../x.prompt.mdx", "'..'", id="parent-inside"),
    pytest.param("./x.prompt.mdx", "'.'", id="dot"),
    pytest.param("/etc/x.prompt.mdx", "relative", id="absolute"),
    pytest.param("agents\\x.prompt.mdx", "'/'", id="backslash"),
    pytest.param("agents//x.prompt.mdx", "empty", id="empty-segment"),
    pytest.param("agents/", "empty", id="trailing-slash"),
    pytest.param("x.prompt.txt", ".mdx", id="wrong-extension"),
    pytest.param("x.prompt.MDX", ".mdx", id="wrong-case"),
    pytest.param("x.prompt", ".mdx", id="no-extension"),
    pytest.param(".mdx", "file name", id="only-extension"),
    pytest.param("x\x00.prompt.mdx", "control", id="nul"),
    pytest.param("x\x1b.prompt.mdx", "control", id="escape"),
    pytest.param("evil\u202exdm.prompt.mdx", "bidi", id="bidi-override"),
    pytest.param("data/\u2066iso\u2069.jsonl", "bidi", id="bidi-isolate"),
    pytest.param("a" * 1100 + ".mdx", "", id="too-long"),
    pytest.param("", "", id="empty"),
]


@pytest.mark.parametrize(("path", "reason"), BAD_PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_bad_paths_are_400_in_the_envelope(client, headers, method, path, reason):
    response = client.request(
        method, "/v1/templates", params={"path": path}, content=b"{}", headers=headers
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_query_params"
    assert reason in error["message"]


@pytest.mark.parametrize(
    "query",
    ["path=%2e%2e/x.prompt.mdx", "path=%2e%2e%2fx.prompt.mdx", "path=%2Fetc%2Fx.prompt.mdx"],
)
def test_percent_encoded_traversal_is_400(client, headers, query):
    response = client.get(f"/v1/templates?{query}", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_a_missing_path_is_400(client, headers):
    response = client.get("/v1/templates", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1, 2]", "JSON object"),
        (b'"root"', "JSON object"),
        (b'{"type": "root"', "invalid JSON"),
        (b"", "invalid JSON"),
        (b'{"type": "root", "x": NaN}', "NaN"),
        (b'{"type": "root", "x": "a\\u0000b"}', "NUL"),
        (b'{"type": "root", "x": "\\ud800"}', "Unicode"),
        (b"\xff\xfe", "JSON"),
    ],
)
def test_a_template_body_that_is_not_a_storable_json_object_is_400(client, headers, body, reason):
    response = put(client, headers, "haiku.prompt.mdx", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert reason in response.json()["error"]["message"]
    assert get(client, headers, "haiku.prompt.mdx").status_code == 404


def test_deleting_a_template_is_204_then_404(client, headers):
    put(client, headers, "haiku.prompt.mdx", HAIKU)
    deleted = client.delete("/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert get(client, headers, "haiku.prompt.mdx").status_code == 404
    again = client.delete("/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "template_not_found"


def test_prompts_lists_published_template_paths_but_not_datasets(client, headers):
    put(client, headers, "haiku.prompt.mdx", HAIKU)
    put(client, headers, "agents/triage.prompt.mdx", TRIAGE)
    put(client, headers, "seasons.jsonl", b'{"input": {"season": "spring"}}\n')
    response = client.get("/v1/prompts", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"paths": ["agents/triage.prompt.mdx", "haiku.prompt.mdx"]}}


def test_prompts_by_name_finds_templates_by_their_frontmatter_name(client, headers):
    put(client, headers, "haiku.prompt.mdx", HAIKU)
    put(client, headers, "v2/haiku.prompt.mdx", HAIKU)
    put(client, headers, "agents/triage.prompt.mdx", TRIAGE)
    by_name = client.get("/v1/prompts", params={"name": "haiku"}, headers=headers)
    assert by_name.json()["data"]["paths"] == ["haiku.prompt.mdx", "v2/haiku.prompt.mdx"]
    none = client.get("/v1/prompts", params={"name": "nothing"}, headers=headers)
    assert none.json() == {"data": {"paths": []}}


def test_republishing_under_a_new_name_moves_the_template_between_names(client, headers):
    put(client, headers, "haiku.prompt.mdx", HAIKU)
    put(client, headers, "haiku.prompt.mdx", TRIAGE)
    paths = client.get("/v1/prompts", params={"name": "triage"}, headers=headers)
    assert paths.json()["data"]["paths"] == ["haiku.prompt.mdx"]
    old = client.get("/v1/prompts", params={"name": "haiku"}, headers=headers)
    assert old.json()["data"]["paths"] == []


def test_an_unknown_prompt_kind_is_400(client, headers):
    put(client, headers, "haiku.prompt.mdx", HAIKU)
    for kind in ("text", "object", "image", "speech"):
        assert get(client, headers, "haiku.prompt.mdx", promptKind=kind).status_code == 200
    response = get(client, headers, "haiku.prompt.mdx", promptKind="video")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_an_sdk_key_reads_templates_but_cannot_publish(admin, client, key_headers):
    app_id = admin.create_app()
    full = key_headers(admin.create_key(app_id, role="full-access"))
    sdk = key_headers(admin.create_key(app_id, role="sdk"))
    put(client, full, "haiku.prompt.mdx", HAIKU)
    assert get(client, sdk, "haiku.prompt.mdx").json()["data"] == HAIKU
    denied = put(client, sdk, "haiku.prompt.mdx", TRIAGE)
    assert denied.status_code == 403
    assert denied.json()["error"]["required_permission"] == "template.write"


def test_another_apps_key_never_sees_the_templates(admin, client, key_headers):
    app_a = admin.create_app("a")
    app_b = admin.create_app("b")
    key_a = key_headers(admin.create_key(app_a, role="full-access"))
    key_b = key_headers(admin.create_key(app_b, role="full-access"))
    put(client, key_a, "haiku.prompt.mdx", HAIKU)

    assert get(client, key_b, "haiku.prompt.mdx").status_code == 404
    assert client.get("/v1/prompts", headers=key_b).json() == {"data": {"paths": []}}
    assert (
        client.delete(
            "/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=key_b
        ).status_code
        == 404
    )
    # The same path in app B is B's own template; A's stays as it was.
    assert put(client, key_b, "haiku.prompt.mdx", TRIAGE).status_code == 201
    assert get(client, key_a, "haiku.prompt.mdx").json()["data"] == HAIKU
    assert get(client, key_b, "haiku.prompt.mdx").json()["data"] == TRIAGE


def test_a_key_of_app_a_naming_app_b_is_401(admin, client, key_headers):
    app_a = admin.create_app("a")
    app_b = admin.create_app("b")
    key_a = admin.create_key(app_a, role="full-access")
    headers = {**key_headers(key_a), "X-Agentmark-App-Id": app_b}
    response = get(client, headers, "haiku.prompt.mdx")
    assert response.status_code == 401


def test_openapi_describes_the_template_routes(client):
    spec = client.get("/v1/openapi.json").json()
    put_op = spec["paths"]["/v1/templates"]["put"]
    assert "application/x-ndjson" in put_op["requestBody"]["content"]
    assert put_op["x-required-permissions"] == ["template.write"]
    get_op = spec["paths"]["/v1/templates"]["get"]
    assert "application/x-ndjson" in get_op["responses"]["200"]["content"]
    assert {p["name"] for p in get_op["parameters"]} >= {"path", "promptKind"}
    assert spec["paths"]["/v1/prompts"]["get"]["x-required-permissions"] == ["template.read"]
