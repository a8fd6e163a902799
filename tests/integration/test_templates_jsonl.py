"""``.jsonl`` paths of /v1/templates: datasets written whole and read back, as JSON or NDJSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"
SEASONS = (FIXTURES / "datasets" / "seasons.jsonl").read_bytes()
SEASON_ROWS = [json.loads(line) for line in SEASONS.splitlines()]
NDJSON = {"Accept": "application/x-ndjson"}


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app("shop")
    return key_headers(admin.create_key(app_id, role="full-access"))


def put(client, headers, path, body: bytes):
    return client.put("/v1/templates", params={"path": path}, content=body, headers=headers)


def get(client, headers, path, **extra):
    return client.get("/v1/templates", params={"path": path}, headers={**headers, **extra})


def ndjson_rows(response):
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def test_a_jsonl_body_creates_the_dataset_and_reads_back_as_a_json_array(client, headers):
    created = put(client, headers, "datasets/seasons.jsonl", SEASONS)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["kind"] == "dataset"
    assert created.json()["data"]["row_count"] == 3

    response = get(client, headers, "datasets/seasons.jsonl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": SEASON_ROWS}


def test_the_dataset_is_ndjson_when_accept_asks_for_it(client, headers):
    put(client, headers, "datasets/seasons.jsonl", SEASONS)
    response = get(client, headers, "datasets/seasons.jsonl", **NDJSON)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert ndjson_rows(response) == SEASON_ROWS


def test_ndjson_is_chosen_among_several_accepted_types(client, headers):
    put(client, headers, "datasets/seasons.jsonl", SEASONS)
    accept = "application/json;q=0.5, application/x-ndjson"
    response = get(client, headers, "datasets/seasons.jsonl", Accept=accept)
    assert response.headers["content-type"].startswith("application/x-ndjson")


def test_a_large_dataset_streams_every_row_in_order(client, headers):
    body = "".join(json.dumps({"input": {"n": n}}) + "\n" for n in range(1, 1301)).encode()
    assert put(client, headers, "big.jsonl", body).status_code == 201
    rows = ndjson_rows(get(client, headers, "big.jsonl", **NDJSON))
    assert [row["input"]["n"] for row in rows] == list(range(1, 1301))


def test_putting_a_dataset_again_replaces_all_its_rows_with_200(client, headers):
    put(client, headers, "seasons.jsonl", SEASONS)
    replaced = put(client, headers, "seasons.jsonl", b'{"input": {"season": "dry"}}\n')
    assert replaced.status_code == 200
    assert replaced.json()["data"]["row_count"] == 1
    assert get(client, headers, "seasons.jsonl").json() == {"data": [{"input": {"season": "dry"}}]}
    rows = client.get("/v1/datasets/seasons/rows", headers=headers).json()["data"]
    assert [row["line_number"] for row in rows] == [1]


def test_blank_lines_crlf_and_a_bom_are_tolerated(client, headers):
    body = b'\xef\xbb\xbf{"input": {"a": 1}}\r\n\r\n   \n{"input": {"a": 2}}'
    assert put(client, headers, "loose.jsonl", body).status_code == 201
    assert get(client, headers, "loose.jsonl").json()["data"] == [
        {"input": {"a": 1}},
        {"input": {"a": 2}},
    ]


def test_an_explicit_null_expected_output_is_kept(client, headers):
    put(client, headers, "nulls.jsonl", b'{"input": {}, "expected_output": null}\n')
    assert get(client, headers, "nulls.jsonl").json()["data"] == [
        {"input": {}, "expected_output": None}
    ]


BAD_LINES = [
    pytest.param(b'{"input": {"a": 1}', "invalid JSON", id="broken-json"),
    pytest.param(b'{"expected_output": "x"}', "input", id="row-without-input"),
    pytest.param(b'{"input": "text"}', "input", id="input-not-an-object"),
    pytest.param(b'{"input": {}, "label": "x"}', "unknown field", id="extra-field"),
    pytest.param(b'["input"]', "JSON object", id="not-an-object"),
    pytest.param(b'{"input": {"x": NaN}}', "NaN", id="nan"),
    pytest.param(b'{"input": {"x": "\\u0000"}}', "NUL", id="nul"),
    pytest.param(b'{"input": {}, "metadata": [1]}', "metadata", id="metadata-not-an-object"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_a_bad_line_is_400_naming_its_number_and_nothing_is_stored(client, headers, line, reason):
    put(client, headers, "seasons.jsonl", SEASONS)
    body = b'{"input": {"a": 1}}\n\n' + line + b'\n{"input": {"a": 4}}\n'
    response = put(client, headers, "seasons.jsonl", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request_body"
    assert error["message"].startswith("Line 3: ")
    assert error["line"] == 3
    assert reason in error["message"]
    # The dataset is exactly as it was before the failed write.
    assert get(client, headers, "seasons.jsonl").json()["data"] == SEASON_ROWS


def test_a_bad_first_write_creates_no_dataset(client, headers):
    response = put(client, headers, "new.jsonl", b'{"input": {}}\n{"nope": 1}\n')
    assert response.status_code == 400
    assert get(client, headers, "new.jsonl").status_code == 404
    assert client.get("/v1/datasets", headers=headers).json()["data"] == []


def test_a_body_that_is_not_utf8_is_400(client, headers):
    response = put(client, headers, "bad.jsonl", b'{"input": {"x": "\xff"}}\n')
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]["message"]


@pytest.mark.parametrize("accept", [{}, NDJSON])
def test_an_unknown_dataset_is_404_dataset_not_found(client, headers, accept):
    response = get(client, headers, "missing.jsonl", **accept)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "dataset_not_found"


def test_deleting_a_jsonl_path_deletes_the_dataset(client, headers):
    put(client, headers, "seasons.jsonl", SEASONS)
    deleted = client.delete("/v1/templates", params={"path": "seasons.jsonl"}, headers=headers)
    assert deleted.status_code == 204
    assert get(client, headers, "seasons.jsonl").status_code == 404
    assert client.get("/v1/datasets", headers=headers).json()["data"] == []
    again = client.delete("/v1/templates", params={"path": "seasons.jsonl"}, headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "dataset_not_found"


def test_rows_appended_through_datasets_are_what_the_jsonl_path_serves(client, headers):
    rows = [
        {"input": {"season": "spring"}, "expected_output": {"mood": "hopeful"}},
        {"input": {"season": "autumn"}, "metadata": {"source": "hand-written"}},
    ]
    for row in rows:
        appended = client.post("/v1/datasets/evals%2Fmoods/rows", json=row, headers=headers)
        assert appended.status_code == 201
    assert get(client, headers, "evals/moods.jsonl").json()["data"] == rows
    assert ndjson_rows(get(client, headers, "evals/moods.jsonl", **NDJSON)) == rows


def test_another_apps_key_never_sees_the_dataset(admin, client, key_headers):
    app_a = admin.create_app("a")
    app_b = admin.create_app("b")
    key_a = key_headers(admin.create_key(app_a, role="full-access"))
    key_b = key_headers(admin.create_key(app_b, role="full-access"))
    put(client, key_a, "seasons.jsonl", SEASONS)
    for accept in ({}, NDJSON):
        assert get(client, key_b, "seasons.jsonl", **accept).status_code == 404
    assert (
        client.delete("/v1/templates", params={"path": "seasons.jsonl"}, headers=key_b).status_code
        == 404
    )
    assert put(client, key_b, "seasons.jsonl", b'{"input": {"b": 1}}\n').status_code == 201
    assert get(client, key_a, "seasons.jsonl").json()["data"] == SEASON_ROWS
