"""POST /v1/scores/batch: per-item results, 201/207/400/413, no item sinks the others."""

from __future__ import annotations

import json

import pytest

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def headers(admin, key_headers):
    return key_headers(admin.create_key(admin.create_app(), role="full-access"))


def item(index, **fields):
    return {"resource_id": TRACE, "name": f"metric-{index}", "score": index / 10, **fields}


def stored(client, headers):
    response = client.get("/v1/scores", params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_batch_of_valid_scores_is_201_with_an_id_per_item(client, headers):
    scores = [item(0, client_id="a"), item(1), {**item(2), "resourceId": TRACE, "clientId": "c"}]
    del scores[2]["resource_id"]
    response = client.post("/v1/scores/batch", json={"scores": scores}, headers=headers)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["summary"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert [r["status"] for r in data["results"]] == ["success"] * 3
    assert [r["index"] for r in data["results"]] == [0, 1, 2]
    assert [r.get("client_id") for r in data["results"]] == ["a", None, "c"]
    rows = {s["id"]: s for s in stored(client, headers)}
    assert set(rows) == {r["id"] for r in data["results"]}
    first = rows[data["results"][0]["id"]]
    assert (first["name"], first["score"], first["source"]) == ("metric-0", 0.0, "api")
    assert "client_id" not in first


def test_a_mixed_batch_is_207_and_only_the_good_items_are_stored(client, headers):
    scores = [
        item(0, client_id="good-1"),
        {"name": "no resource", "score": 1, "client_id": "bad-1"},
        item(2, client_id="good-2"),
        item(3, score="high", client_id="bad-2"),
        "not an object",
        item(5, name="x" * 256, client_id="\ud800"),
    ]
    # json.dumps escapes the lone surrogate, which httpx's json= could not send
    response = client.post(
        "/v1/scores/batch",
        content=json.dumps({"scores": scores}),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 207, response.text
    data = response.json()["data"]
    assert data["summary"] == {"total": 6, "succeeded": 2, "failed": 4}
    results = data["results"]
    assert [r["status"] for r in results] == [
        "success",
        "error",
        "success",
        "error",
        "error",
        "error",
    ]
    client_ids = [r.get("client_id") for r in results]
    assert client_ids == ["good-1", "bad-1", "good-2", "bad-2", None, None]
    assert results[1]["error"]["code"] == "invalid_score"
    assert "resource_id" in results[1]["error"]["message"]
    assert results[3]["error"]["details"][0]["field"] == "score"
    assert "id" not in results[1]
    assert "error" not in results[0]
    kept = stored(client, headers)
    assert sorted(s["name"] for s in kept) == ["metric-0", "metric-2"]
    assert {s["id"] for s in kept} == {results[0]["id"], results[2]["id"]}


def test_a_batch_without_any_valid_item_is_400_with_the_results(client, headers):
    scores = [{"name": "a", "score": 1, "client_id": "x"}, item(1, score=None)]
    response = client.post("/v1/scores/batch", json={"scores": scores}, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert error["summary"] == {"total": 2, "succeeded": 0, "failed": 2}
    assert [r["status"] for r in error["results"]] == ["error", "error"]
    assert error["results"][0]["client_id"] == "x"
    assert stored(client, headers) == []


def test_non_finite_scores_fail_their_item_alone(client, headers):
    scores = [("a", "NaN"), ("b", "2"), ("c", "-Infinity")]
    items = [f'{{"resourceId": "{TRACE}", "name": "{n}", "score": {v}}}' for n, v in scores]
    content = '{"scores": [' + ", ".join(items) + "]}"
    response = client.post(
        "/v1/scores/batch", content=content, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 207, response.text
    statuses = [r["status"] for r in response.json()["data"]["results"]]
    assert statuses == ["error", "success", "error"]
    assert [s["name"] for s in stored(client, headers)] == ["b"]


def test_a_batch_of_1000_is_accepted(client, headers):
    response = client.post(
        "/v1/scores/batch", json={"scores": [item(i) for i in range(1000)]}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["summary"]["succeeded"] == 1000
    total = client.get("/v1/scores", params={"limit": 1}, headers=headers).json()
    assert total["pagination"]["total"] == 1000


def test_a_batch_over_1000_items_is_413_and_nothing_is_stored(client, headers):
    response = client.post(
        "/v1/scores/batch", json={"scores": [item(i) for i in range(1001)]}, headers=headers
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "1000" in response.json()["error"]["message"]
    assert stored(client, headers) == []


@pytest.mark.parametrize(
    "body",
    [{"scores": []}, {}, {"scores": "many"}, [item(0)], {"scores": None}],
    ids=["empty", "no scores", "scores not a list", "bare list", "null"],
)
def test_a_malformed_envelope_is_400(client, headers, body):
    response = client.post("/v1/scores/batch", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert stored(client, headers) == []


def test_batch_scores_belong_to_the_callers_app(admin, client, key_headers, headers):
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    response = client.post("/v1/scores/batch", json={"scores": [item(0)]}, headers=headers)
    score_id = response.json()["data"]["results"][0]["id"]
    assert client.get(f"/v1/scores/{score_id}", headers=other).status_code == 404
    assert stored(client, other) == []
