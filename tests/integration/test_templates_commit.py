"""``PUT /v1/templates?commit_sha=``: the commit a template was built from, stamped into
what every GET serves, as AgentMark's own servers stamp it (templates/stamp.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"
HAIKU = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app("shop")
    return key_headers(admin.create_key(app_id, role="full-access"))


def put(client, headers, path, body, **params):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.put(
        "/v1/templates", params={"path": path, **params}, content=content, headers=headers
    )


def served_frontmatter(client, headers, path) -> str:
    response = client.get("/v1/templates", params={"path": path}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["children"][0]["value"]


def test_a_published_commit_is_stamped_into_the_served_frontmatter(client, headers):
    assert put(client, headers, "haiku.prompt.mdx", HAIKU).status_code == 201
    unstamped = client.get("/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=headers)
    assert unstamped.json()["data"] == HAIKU  # without a commit, stored as sent

    response = put(client, headers, "haiku.prompt.mdx", HAIKU, commit_sha=SHA.upper())
    assert response.status_code == 200, response.text

    served = served_frontmatter(client, headers, "haiku.prompt.mdx")

    original = HAIKU["children"][0]["value"]
    assert served == f'{original}\nagentmark_meta:\n  commit_sha: "{SHA}"'
    assert yaml.safe_load(served)["agentmark_meta"] == {"commit_sha": SHA}


def test_republishing_replaces_the_stamp_even_in_a_cached_answer(client, headers):
    assert put(client, headers, "haiku.prompt.mdx", HAIKU, commit_sha="aaaa").status_code == 201
    first = served_frontmatter(client, headers, "haiku.prompt.mdx")  # now cached
    stale = json.loads(json.dumps(HAIKU))
    stale["children"][0]["value"] = first  # a stamped AST, published again

    assert put(client, headers, "haiku.prompt.mdx", stale, commit_sha="1234567").status_code == 200

    served = served_frontmatter(client, headers, "haiku.prompt.mdx")
    assert served.count("agentmark_meta") == 1
    # Quoted, so an all-digit id stays a string for every YAML reader.
    assert yaml.safe_load(served)["agentmark_meta"] == {"commit_sha": "1234567"}


@pytest.mark.parametrize("commit", ["abc", "xyz1234", "0" * 65, "12 34", ""])
def test_a_malformed_commit_is_400_and_nothing_is_stored(client, headers, commit):
    response = put(client, headers, "haiku.prompt.mdx", HAIKU, commit_sha=commit)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_query_params"
    assert "commit_sha must be 4 to 64 hexadecimal characters" in error["message"]
    missing = client.get("/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=headers)
    assert missing.status_code == 404


def test_a_dataset_is_not_stamped(client, headers):
    rows = b'{"input": {"a": 1}, "expected_output": "agentmark_meta"}\n'
    response = client.put(
        "/v1/templates",
        params={"path": "evals/math.jsonl", "commit_sha": SHA},
        content=rows,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    served = client.get("/v1/templates", params={"path": "evals/math.jsonl"}, headers=headers)
    assert served.json()["data"] == [{"input": {"a": 1}, "expected_output": "agentmark_meta"}]


def test_the_configs_commit_is_answered_by_config_and_score_configs(client, headers):
    config = {"agentmarkPath": ".", "scores": {"exact": {"type": "boolean"}}}
    assert put(client, headers, "agentmark.json", config, commit_sha=SHA).status_code == 201

    answered = client.get("/v1/config", headers=headers).json()["data"]
    assert answered == {"commit_sha": SHA, "config": config}
    scores = client.get("/v1/score-configs", headers=headers).json()["data"]
    assert [(s["name"], s["commit_sha"]) for s in scores] == [("exact", SHA)]

    # Published again without one: no commit is claimed any more.
    assert put(client, headers, "agentmark.json", config).status_code == 200
    assert client.get("/v1/config", headers=headers).json()["data"]["commit_sha"] is None


def test_a_frontmatter_too_deep_to_read_is_stored_unstamped_not_a_500(client, headers):
    deep = {"type": "root", "children": [{"type": "yaml", "value": "a: " + "[" * 5000}]}
    response = put(client, headers, "deep.prompt.mdx", deep, commit_sha=SHA)
    assert response.status_code == 201, response.text
    served = client.get("/v1/templates", params={"path": "deep.prompt.mdx"}, headers=headers)
    assert served.json()["data"] == deep
