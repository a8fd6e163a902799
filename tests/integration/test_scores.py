"""POST/GET/DELETE /v1/scores, names and aggregations (DESIGN section 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def headers(admin, key_headers):
    """Full-access headers of a fresh app."""
    return key_headers(admin.create_key(admin.create_app(), role="full-access"))


def post_score(client, headers, **fields):
    body = {"resource_id": TRACE, "name": "accuracy", "score": 0.5, **fields}
    response = client.post("/v1/scores", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def total_scores(client, headers):
    response = client.get("/v1/scores", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["pagination"]["total"]


def test_the_sdks_camel_case_body_creates_a_score(client, headers):
    body = {
        "resourceId": TRACE,
        "name": "accuracy",
        "score": 0.95,
        "label": "good",
        "reason": "Response matched expected output",
        "type": "numeric",
        "source": "api",
    }
    response = client.post("/v1/scores", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["id"]
    assert data["resource_id"] == TRACE
    assert (data["name"], data["score"], data["label"]) == ("accuracy", 0.95, "good")
    assert (data["reason"], data["type"], data["source"]) == (
        "Response matched expected output",
        "numeric",
        "api",
    )
    assert datetime.fromisoformat(data["created_at"]).tzinfo is not None


def test_a_snake_case_body_is_accepted_and_source_defaults_to_api(client, headers):
    data = post_score(client, headers, metadata={"judge": "gpt-4o", "tries": 2})
    assert data["source"] == "api"
    assert data["label"] is None and data["reason"] is None and data["type"] is None
    assert data["metadata"] == {"judge": "gpt-4o", "tries": 2}


def test_any_short_source_is_kept(client, headers):
    assert post_score(client, headers, source="annotation")["source"] == "annotation"
    assert post_score(client, headers, source="nightly-judge")["source"] == "nightly-judge"


def test_integer_scores_are_numbers(client, headers):
    assert post_score(client, headers, score=1)["score"] == 1.0


def test_a_created_score_reads_back_by_id(client, headers):
    created = post_score(client, headers, label="good")
    response = client.get(f"/v1/scores/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json()["data"] == {k: v for k, v in created.items() if k != "message"}


BAD_BODIES = {
    "missing name": {"resource_id": TRACE, "score": 1},
    "missing resource id": {"name": "accuracy", "score": 1},
    "missing score": {"resource_id": TRACE, "name": "accuracy"},
    "empty name": {"resource_id": TRACE, "name": "", "score": 1},
    "name too long": {"resource_id": TRACE, "name": "n" * 256, "score": 1},
    "resource id too long": {"resource_id": "r" * 256, "name": "a", "score": 1},
    "score as text": {"resource_id": TRACE, "name": "a", "score": "0.5"},
    "score as boolean": {"resource_id": TRACE, "name": "a", "score": True},
    "score null": {"resource_id": TRACE, "name": "a", "score": None},
    "label too long": {"resource_id": TRACE, "name": "a", "score": 1, "label": "l" * 256},
    "reason too long": {"resource_id": TRACE, "name": "a", "score": 1, "reason": "r" * 10_001},
    "source too long": {"resource_id": TRACE, "name": "a", "score": 1, "source": "s" * 65},
    "empty source": {"resource_id": TRACE, "name": "a", "score": 1, "source": ""},
    "NUL in name": {"resource_id": TRACE, "name": "acc\x00uracy", "score": 1},
    "metadata not an object": {"resource_id": TRACE, "name": "a", "score": 1, "metadata": [1]},
    "not an object": [{"resource_id": TRACE, "name": "a", "score": 1}],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_an_invalid_score_is_a_400_and_nothing_is_stored(client, headers, body):
    response = client.post("/v1/scores", json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert error["message"]
    assert total_scores(client, headers) == 0


def raw(fields: str) -> str:
    """A score body with literals that json.dumps never writes (NaN, Infinity)."""
    return '{"resourceId": "' + TRACE + '", ' + fields + "}"


RAW_BODIES = {
    "NaN": raw('"name": "a", "score": NaN'),
    "Infinity": raw('"name": "a", "score": Infinity'),
    "minus Infinity": raw('"name": "a", "score": -Infinity'),
    "NaN in metadata": raw('"name": "a", "score": 1, "metadata": {"x": [NaN]}'),
    "lone surrogate": raw('"name": "\\ud800", "score": 1'),
    "not JSON": "resourceId=abc",
}


@pytest.mark.parametrize("content", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_non_finite_numbers_and_broken_text_are_refused(client, headers, content):
    response = client.post(
        "/v1/scores",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert total_scores(client, headers) == 0


def test_scores_list_newest_first_with_pagination(client, headers):
    ids = [post_score(client, headers, score=i)["id"] for i in range(5)]
    response = client.get("/v1/scores", params={"limit": 2, "offset": 1}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    assert [s["id"] for s in body["data"]] == ids[::-1][1:3]


def test_scores_list_filters_by_resource_name_and_source(client, headers):
    post_score(client, headers, name="accuracy", source="eval")
    post_score(client, headers, name="tone", source="annotation")
    post_score(client, headers, name="accuracy", resource_id=OTHER_TRACE)

    def names(**params):
        response = client.get("/v1/scores", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return sorted((s["name"], s["resource_id"], s["source"]) for s in response.json()["data"])

    assert names(name="tone") == [("tone", TRACE, "annotation")]
    assert names(source="eval") == [("accuracy", TRACE, "eval")]
    assert names(resource_id=OTHER_TRACE) == [("accuracy", OTHER_TRACE, "api")]
    assert names(resource_id=TRACE, name="accuracy") == [("accuracy", TRACE, "eval")]
    assert names(name="nothing") == []


def test_date_filters_take_whole_days_or_exact_moments(client, headers):
    post_score(client, headers)
    now = datetime.now(UTC)
    today = now.date()

    def total(**params):
        response = client.get("/v1/scores", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["pagination"]["total"]

    assert total(start_date=str(today), end_date=str(today)) == 1
    assert total(end_date=str(today - timedelta(days=1))) == 0
    assert total(start_date=str(today + timedelta(days=1))) == 0
    assert total(start_date=(now - timedelta(minutes=5)).isoformat()) == 1
    assert total(end_date=(now - timedelta(minutes=5)).isoformat()) == 0
    assert total(start_date="0001-01-01", end_date="9999-12-31") == 1
    assert total(end_date="9999-12-31T23:59:59") == 1


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"start_date": "yesterday"},
        {"end_date": "2026-13-45"},
        {"resource_id": "r" * 256},
        {"end_date": "9999-12-31T23:59:59-05:00"},
    ],
)
def test_invalid_list_parameters_are_a_400(client, headers, params):
    response = client.get("/v1/scores", params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_nul_characters_in_filters_and_ids_are_a_400_not_a_database_error(client, headers):
    listed = client.get("/v1/scores", params={"name": "acc\x00uracy"}, headers=headers)
    assert listed.status_code == 400
    assert listed.json()["error"]["code"] == "invalid_query_params"
    read = client.get("/v1/scores/abc%00def", headers=headers)
    assert read.status_code == 400
    assert read.json()["error"]["code"] == "invalid_path_params"


def test_score_names_are_distinct_and_sorted(client, headers):
    for name in ("tone", "accuracy", "tone", "latency"):
        post_score(client, headers, name=name)
    response = client.get("/v1/scores/names", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": ["accuracy", "latency", "tone"]}


def test_aggregations_give_count_mean_min_max_and_labels_per_name(client, headers):
    post_score(client, headers, name="accuracy", score=0.2, label="bad")
    post_score(client, headers, name="accuracy", score=0.8, label="good")
    post_score(client, headers, name="accuracy", score=1.1, label="good")
    post_score(client, headers, name="tone", score=3, resource_id=OTHER_TRACE)
    response = client.get("/v1/scores/aggregations", headers=headers)
    assert response.status_code == 200, response.text
    accuracy, tone = response.json()["data"]
    assert accuracy["name"] == "accuracy"
    assert accuracy["count"] == 3
    assert accuracy["avg_score"] == pytest.approx(0.7)
    assert (accuracy["min_score"], accuracy["max_score"]) == (0.2, 1.1)
    assert accuracy["labels"] == {"bad": 1, "good": 2}
    assert tone == {
        "name": "tone",
        "count": 1,
        "avg_score": 3.0,
        "min_score": 3.0,
        "max_score": 3.0,
        "labels": {},
    }

    filtered = client.get(
        "/v1/scores/aggregations", params={"resource_id": OTHER_TRACE}, headers=headers
    )
    assert [a["name"] for a in filtered.json()["data"]] == ["tone"]
    tomorrow = str(datetime.now(UTC).date() + timedelta(days=1))
    later = client.get("/v1/scores/aggregations", params={"start_date": tomorrow}, headers=headers)
    assert later.json() == {"data": []}


def test_a_deleted_score_is_gone(client, headers):
    score = post_score(client, headers)
    kept = post_score(client, headers)
    response = client.delete(f"/v1/scores/{score['id']}", headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    missing = client.get(f"/v1/scores/{score['id']}", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "score_not_found"
    again = client.delete(f"/v1/scores/{score['id']}", headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "score_not_found"
    assert client.get(f"/v1/scores/{kept['id']}", headers=headers).status_code == 200


def test_an_unknown_score_id_is_a_404(client, headers):
    response = client.get("/v1/scores/0b9f8a7e-0000-4000-8000-000000000000", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "score_not_found", "message": "Score not found"}


def test_another_apps_scores_do_not_exist_for_a_key(admin, client, key_headers, headers):
    mine = post_score(client, headers, name="accuracy", label="good")
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    post_score(client, other, name="theirs")

    assert client.get(f"/v1/scores/{mine['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/scores/{mine['id']}", headers=other).status_code == 404
    listed = client.get("/v1/scores", params={"resource_id": TRACE}, headers=other).json()
    assert [s["name"] for s in listed["data"]] == ["theirs"]
    assert client.get("/v1/scores/names", headers=other).json() == {"data": ["theirs"]}
    aggregated = client.get("/v1/scores/aggregations", headers=other).json()["data"]
    assert [a["name"] for a in aggregated] == ["theirs"]
    # and the owner still has it
    assert client.get(f"/v1/scores/{mine['id']}", headers=headers).status_code == 200


def test_the_sdk_role_can_write_but_not_read_scores(admin, client, key_headers):
    sdk = key_headers(admin.create_key(admin.create_app(), role="sdk"))
    created = post_score(client, sdk)
    response = client.get(f"/v1/scores/{created['id']}", headers=sdk)
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "score.read"
