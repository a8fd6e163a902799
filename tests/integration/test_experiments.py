"""GET /v1/experiments, /v1/experiments/{experimentId} and /v1/runs/{runId}/traces: runs
derived from the spans and scores the clients record (CLIENTS.md 5.1, 5.2, 5.5)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.experiment_runs import Row, post_run, sdk_run

ROWS = [
    Row(
        input={"question": "5 + 7"},
        expected="12",
        output="12",
        scores={"exact": 1, "length": 0.5},
    ),
    Row(
        input={"question": "2 * 3"},
        expected="6",
        output="five",
        scores={"exact": 0},
        input_tokens=50,
        output_tokens=10,
        duration_ms=400,
    ),
    Row(input={"question": "héllo?"}, error="RateLimitError: slow down"),
]


@pytest.fixture
def app_id(admin):
    return admin.create_app()


@pytest.fixture
def headers(admin, app_id, key_headers):
    return key_headers(admin.create_key(app_id, role="full-access"))


def get(client, headers, path, **params):
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_run_recorded_by_the_sdk_is_listed_with_its_aggregates(client, headers):
    run = post_run(client, headers, sdk_run(ROWS))
    _, unmarked = payloads.llm_trace()  # a trace of no run makes no experiment
    payloads.post(client, headers, unmarked)

    page = get(client, headers, "/v1/experiments")

    assert page["pagination"] == {"total": 1, "limit": 50, "offset": 0}
    [summary] = page["data"]
    assert summary["id"] == run.run_id
    assert summary["name"] == "math-eval"
    assert (summary["promptName"], summary["datasetPath"]) == ("", "math.dataset.jsonl")
    assert (summary["itemCount"], summary["errorCount"]) == (3, 1)
    assert summary["avgLatencyMs"] == pytest.approx((200 + 400 + 200) / 3, abs=0.01)
    assert summary["totalTokens"] == 120 + 60 + 120
    assert summary["totalCost"] > 0
    assert summary["avgScore"] == pytest.approx(1.5 / 3)
    assert summary["scorers"] == [
        {"name": "exact", "count": 2, "avgScore": 0.5, "minScore": 0, "maxScore": 1},
        {"name": "length", "count": 1, "avgScore": 0.5, "minScore": 0.5, "maxScore": 0.5},
    ]
    assert (summary["experimentKey"], summary["treeHash"]) == ("math-eval", "tree-1")
    assert summary["commitSha"] == ""
    assert summary["createdAt"]


def test_the_detail_has_one_item_per_row_with_text_fields(client, headers):
    run = post_run(client, headers, sdk_run(ROWS))

    detail = get(client, headers, f"/v1/experiments/{run.run_id}")["data"]

    assert detail["id"] == run.run_id and detail["itemCount"] == 3
    first, second, third = detail["items"]
    assert first == {
        "traceId": run.trace_ids[0],
        "itemName": "0",
        "input": '{"question":"5 + 7"}',
        "expectedOutput": '"12"',
        "output": "12",
        "latencyMs": 200,
        "cost": pytest.approx(first["cost"]),
        "tokens": 120,
        "model": "gpt-4o-mini",
        "scores": [
            {"name": "exact", "score": 1, "label": "", "reason": ""},
            {"name": "length", "score": 0.5, "label": "", "reason": ""},
        ],
        "error": None,
    }
    assert first["cost"] > 0
    assert (second["itemName"], second["output"], second["latencyMs"]) == ("1", "five", 400)
    assert second["scores"] == [{"name": "exact", "score": 0, "label": "", "reason": ""}]
    assert third["input"] == '{"question":"héllo?"}'
    assert (third["expectedOutput"], third["scores"]) == ("", [])
    assert third["error"] == "RateLimitError: slow down"


def test_a_webhook_run_reads_its_rendered_input_and_commit(client, headers):
    """Prompt experiments carry no dataset_input: the row's input is the span's input."""
    run = sdk_run(
        [Row(input={"q": 1}, output="done")],
        extra={
            "agentmark.prompt_name": "math",
            "agentmark.metadata.commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b",
            "agentmark.input": '[{"role":"user","content":"1"}]',
        },
    )
    for span in run.spans:
        span["attributes"] = [
            a for a in span["attributes"] if a["key"] != "agentmark.dataset_input"
        ]
    post_run(client, headers, run)

    detail = get(client, headers, f"/v1/experiments/{run.run_id}")["data"]

    assert detail["promptName"] == "math"
    assert detail["commitSha"] == "3f786850e387550fdab836ed7e6dc881de23001b"
    assert detail["items"][0]["input"] == '[{"role":"user","content":"1"}]'


def test_the_list_pages_newest_first_and_filters_exactly(client, headers):
    older = post_run(client, headers, sdk_run(ROWS[:1], dataset_path="a.jsonl"))
    newer = post_run(
        client,
        headers,
        sdk_run(ROWS[:2], dataset_path="b.jsonl", extra={"agentmark.prompt_name": "math"}),
    )

    assert [r["id"] for r in get(client, headers, "/v1/experiments")["data"]] == [
        newer.run_id,
        older.run_id,
    ]
    page = get(client, headers, "/v1/experiments", limit=1, offset=1)
    assert [r["id"] for r in page["data"]] == [older.run_id]
    assert page["pagination"] == {"total": 2, "limit": 1, "offset": 1}
    by_path = get(client, headers, "/v1/experiments", dataset_path="a.jsonl")["data"]
    assert [r["id"] for r in by_path] == [older.run_id]
    by_prompt = get(client, headers, "/v1/experiments", prompt_name="math")["data"]
    assert [r["id"] for r in by_prompt] == [newer.run_id]
    assert get(client, headers, "/v1/experiments", prompt_name="mat")["data"] == []
    assert get(client, headers, "/v1/experiments", end_date="2000-01-01")["data"] == []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert get(client, headers, "/v1/experiments", start_date=today)["pagination"]["total"] == 2


def test_a_page_is_at_most_200_runs_as_in_the_reference(client, headers):
    response = client.get("/v1/experiments", headers=headers, params={"limit": 201})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"
    assert client.get("/v1/experiments", headers=headers, params={"limit": 200}).status_code == 200


def test_an_unknown_experiment_is_a_404(client, headers):
    response = client.get("/v1/experiments/no-such-run", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "Experiment not found"}


def test_run_traces_lists_the_rows_traces_oldest_first(client, headers):
    run = post_run(client, headers, sdk_run(ROWS))

    page = get(client, headers, f"/v1/runs/{run.run_id}/traces", limit=2)

    assert page["pagination"] == {"total": 3, "limit": 2, "offset": 0}
    assert [t["id"] for t in page["data"]] == run.trace_ids[:2]
    assert page["data"][0]["status"] == "UNSET" and page["data"][0]["span_count"] == 2
    response = client.get("/v1/runs/no-such-run/traces", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Run not found"


def test_another_apps_runs_and_scores_are_never_seen(admin, client, headers, key_headers):
    run = post_run(client, headers, sdk_run(ROWS))
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    # The other app scores the same trace ids: they must not count in this app's run.
    body = {"resourceId": run.trace_ids[0], "name": "exact", "score": 0.0}
    assert client.post("/v1/scores", json=body, headers=other).status_code in (200, 201)

    assert get(client, other, "/v1/experiments")["data"] == []
    assert client.get(f"/v1/experiments/{run.run_id}", headers=other).status_code == 404
    assert client.get(f"/v1/runs/{run.run_id}/traces", headers=other).status_code == 404
    mine = get(client, headers, f"/v1/experiments/{run.run_id}")["data"]
    assert mine["scorers"][0] == {
        "name": "exact",
        "count": 2,
        "avgScore": 0.5,
        "minScore": 0,
        "maxScore": 1,
    }


@pytest.mark.parametrize("role", ["sdk", "read-only"])
def test_reading_runs_needs_experiment_read(admin, app_id, client, key_headers, role):
    denied = key_headers(admin.create_key(app_id, role=role))
    allowed = key_headers(admin.create_key(app_id, permissions=["experiment.read"]))
    for path in ("/v1/experiments", "/v1/experiments/x", "/v1/runs/x/traces"):
        response = client.get(path, headers=denied)
        assert response.status_code == 403, path
        assert response.json()["error"]["required_permission"] == "experiment.read"
    assert client.get("/v1/experiments", headers=allowed).status_code == 200


def test_runs_are_no_longer_posted(client, headers):
    response = client.post("/v1/experiments", json={"name": "x"}, headers=headers)
    assert response.status_code == 405
