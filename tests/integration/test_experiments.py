"""POST/GET /v1/experiments and /v1/experiments/{experimentId} (DESIGN section 5)."""

from __future__ import annotations

import copy

import pytest

from agentmark_gateway.traces.models import Span

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"

RUN = {
    "name": "summaries v2",
    "experiment_key": "summarize",
    "dataset_path": "datasets/articles.jsonl",
    "prompt_path": "prompts/summarize.prompt.mdx",
    "commit_sha": "3f786850e387550fdab836ed7e6dc881de23001b",
    "tree_hash": "tree-1",
    "metadata": {"model": "gpt-4o", "ci": True},
    "items": [
        {
            "input": {"text": "First article"},
            "expected_output": "first",
            "output": "first summary",
            "trace_id": TRACE_A,
            "scores": [
                {"name": "correctness", "score": 1, "label": "pass"},
                {"name": "length", "score": 0.5, "reason": "a bit long"},
            ],
        },
        {
            "input": {"text": "Second article"},
            "expected_output": "second",
            "output": "wrong",
            "trace_id": TRACE_B,
            "scores": [{"name": "correctness", "score": 0, "label": "fail"}],
        },
        {"input": {"text": "Third article"}, "error": "RateLimitError: slow down"},
    ],
}


@pytest.fixture
def headers(admin, key_headers):
    return key_headers(admin.create_key(admin.create_app(), role="full-access"))


def record(client, headers, **changes):
    body = {**copy.deepcopy(RUN), **changes}
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def add_spans(client, app_id, spans):
    """Spans straight into the table: the trace ingest route is not what is tested here."""
    gateway = client.app.state.gateway

    async def work():
        async with gateway.sessionmaker() as session:
            session.add_all(Span(app_id=app_id, name="call", **fields) for fields in spans)
            await session.commit()

    client.portal.call(work)


def test_a_recorded_run_comes_back_with_items_and_score_summaries(client, headers):
    run = record(client, headers)
    assert run["id"].startswith("exp_")
    assert run["name"] == "summaries v2"
    assert run["experimentKey"] == "summarize"
    assert run["datasetPath"] == "datasets/articles.jsonl"
    assert run["promptPath"] == run["promptName"] == "prompts/summarize.prompt.mdx"
    assert (run["commitSha"], run["treeHash"]) == (RUN["commit_sha"], "tree-1")
    assert run["metadata"] == {"model": "gpt-4o", "ci": True}
    assert run["createdAt"]
    assert (run["itemCount"], run["errorCount"]) == (3, 1)
    assert run["avgScore"] == pytest.approx(0.5)
    assert run["scoreSummaries"] == [
        {"name": "correctness", "count": 2, "avgScore": 0.5, "minScore": 0.0, "maxScore": 1.0},
        {"name": "length", "count": 1, "avgScore": 0.5, "minScore": 0.5, "maxScore": 0.5},
    ]
    first, second, third = run["items"]
    assert [i["position"] for i in run["items"]] == [0, 1, 2]
    assert first["input"] == {"text": "First article"}
    assert (first["expectedOutput"], first["output"]) == ("first", "first summary")
    assert first["traceId"] == TRACE_A
    assert first["scores"] == [
        {"name": "correctness", "score": 1.0, "label": "pass", "reason": None},
        {"name": "length", "score": 0.5, "label": None, "reason": "a bit long"},
    ]
    assert second["scores"][0]["label"] == "fail"
    assert third["error"] == "RateLimitError: slow down"
    assert third["output"] is None and third["traceId"] is None and third["scores"] == []
    # No spans yet: nothing is made up.
    assert first["latencyMs"] is None and first["cost"] is None
    assert run["avgLatencyMs"] is None
    assert (run["totalCost"], run["totalTokens"]) == (0.0, 0)

    read = client.get(f"/v1/experiments/{run['id']}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["data"] == run


def test_a_camel_case_body_is_accepted_too(client, headers):
    body = {
        "name": "camel",
        "experimentKey": "k",
        "datasetPath": "d.jsonl",
        "promptPath": "p.prompt.mdx",
        "treeHash": "t",
        "items": [{"input": "hi", "expectedOutput": "hello", "output": "hey", "traceId": TRACE_A}],
    }
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    run = response.json()["data"]
    assert (run["experimentKey"], run["treeHash"]) == ("k", "t")
    assert run["items"][0]["expectedOutput"] == "hello"
    assert run["items"][0]["traceId"] == TRACE_A


def test_a_run_without_items_or_optional_fields_is_recorded(client, headers):
    body = {"name": "empty", "dataset_path": "d.jsonl", "prompt_path": "p.prompt.mdx"}
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    run = response.json()["data"]
    assert (run["itemCount"], run["avgScore"], run["items"]) == (0, None, [])
    assert run["experimentKey"] is None and run["treeHash"] is None


def span(trace_id, span_id, start_ms, end_ms, **fields):
    ms = 1_000_000
    return dict(
        trace_id=trace_id,
        span_id=span_id * 16,
        start_time_ns=start_ms * ms,
        end_time_ns=end_ms * ms,
        **fields,
    )


def test_latency_cost_and_tokens_come_from_the_items_traces(admin, client, key_headers):
    key = admin.create_key(admin.create_app(), role="full-access")
    headers = key_headers(key)
    tokens = {"input_tokens": 100, "output_tokens": 20}
    add_spans(
        client,
        key["app_id"],
        [
            span(TRACE_A, "a", 1_000, 1_250, cost=0.002, model="gpt-4o", **tokens),
            span(TRACE_A, "b", 1_050, 1_300, cost=0.001, input_tokens=10, output_tokens=5),
            span(TRACE_B, "c", 0, 100, input_tokens=1, output_tokens=1, model="gpt-4o-mini"),
        ],
    )
    # The same trace id in another app must not count.
    other = admin.create_app()
    add_spans(client, other, [span(TRACE_A, "d", 0, 10**9, cost=99.0, input_tokens=10**6)])

    run = record(client, headers)
    first, second, third = run["items"]
    assert first["latencyMs"] == pytest.approx(300.0)
    assert first["cost"] == pytest.approx(0.003)
    assert (first["tokens"], first["model"]) == (135, "gpt-4o")
    assert second["latencyMs"] == pytest.approx(100.0)
    assert second["cost"] is None
    assert (second["tokens"], second["model"]) == (2, "gpt-4o-mini")
    assert third["latencyMs"] is None
    assert run["avgLatencyMs"] == pytest.approx(200.0)
    assert run["totalCost"] == pytest.approx(0.003)
    assert run["totalTokens"] == 137

    listed = client.get("/v1/experiments", headers=headers).json()["data"][0]
    assert listed["avgLatencyMs"] == pytest.approx(200.0)
    assert listed["totalCost"] == pytest.approx(0.003)
    assert listed["totalTokens"] == 137


def test_runs_list_newest_first_without_items_and_paginated(client, headers):
    ids = [record(client, headers, name=f"run {i}")["id"] for i in range(3)]
    response = client.get("/v1/experiments", params={"limit": 2}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"] == {"total": 3, "limit": 2, "offset": 0}
    assert [r["id"] for r in body["data"]] == ids[::-1][:2]
    summary = body["data"][0]
    assert "items" not in summary
    assert (summary["itemCount"], summary["errorCount"]) == (3, 1)
    assert summary["avgScore"] == pytest.approx(0.5)
    assert [s["name"] for s in summary["scoreSummaries"]] == ["correctness", "length"]


def test_runs_list_filters_by_key_prompt_dataset_and_tree(client, headers):
    record(client, headers, name="a")
    record(client, headers, name="b", experiment_key="other", tree_hash="tree-2")
    record(client, headers, name="c", dataset_path="datasets/other.jsonl")
    record(client, headers, name="d", prompt_path="prompts/other.prompt.mdx")

    def names(**params):
        response = client.get("/v1/experiments", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return sorted(r["name"] for r in response.json()["data"])

    assert names(experiment_key="other") == ["b"]
    assert names(dataset_path="datasets/other.jsonl") == ["c"]
    assert names(prompt_path="prompts/other.prompt.mdx") == ["d"]
    assert names(tree_hash="tree-2") == ["b"]
    assert names(experiment_key="summarize", tree_hash="tree-1") == ["a", "c", "d"]
    assert names(commit_sha=RUN["commit_sha"]) == ["a", "b", "c", "d"]
    assert names(start_date="2000-01-01", end_date="2000-12-31") == []


BAD_RUNS = {
    "missing name": {"name": None},
    "empty name": {"name": ""},
    "missing dataset path": {"dataset_path": None},
    "missing prompt path": {"prompt_path": None},
    "unknown field": {"prompt": "typo"},
    "items not a list": {"items": {"input": 1}},
    "item without input": {"items": [{"output": "x"}]},
    "score without a name": {"items": [{"input": 1, "scores": [{"score": 1}]}]},
    "score as text": {"items": [{"input": 1, "scores": [{"name": "a", "score": "high"}]}]},
    "trace id too long": {"items": [{"input": 1, "trace_id": "f" * 33}]},
    "tree hash too long": {"tree_hash": "t" * 65},
    "NUL in output": {"items": [{"input": 1, "output": "a\x00b"}]},
    "too many scores": {"items": [{"input": 1, "scores": [{"name": "a", "score": 1}] * 101}]},
}


@pytest.mark.parametrize("changes", BAD_RUNS.values(), ids=BAD_RUNS.keys())
def test_an_invalid_run_is_a_400_and_nothing_is_stored(client, headers, changes):
    body = {**copy.deepcopy(RUN), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    listed = client.get("/v1/experiments", headers=headers).json()
    assert listed["pagination"]["total"] == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_anywhere_in_a_run_are_refused(client, headers, literal):
    for item in (
        f'{{"input": 1, "scores": [{{"name": "a", "score": {literal}}}]}}',
        f'{{"input": {{"x": [1, {literal}]}}}}',
    ):
        content = '{"name": "n", "dataset_path": "d", "prompt_path": "p", "items": [' + item + "]}"
        response = client.post(
            "/v1/experiments",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
    assert client.get("/v1/experiments", headers=headers).json()["pagination"]["total"] == 0


def test_an_unknown_run_is_a_404(client, headers):
    response = client.get("/v1/experiments/exp_doesnotexist", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "experiment_not_found"


def test_another_apps_runs_do_not_exist_for_a_key(admin, client, key_headers, headers):
    mine = record(client, headers)
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    record(client, other, name="theirs")
    assert client.get(f"/v1/experiments/{mine['id']}", headers=other).status_code == 404
    listed = client.get("/v1/experiments", params={"experiment_key": "summarize"}, headers=other)
    assert [r["name"] for r in listed.json()["data"]] == ["theirs"]
    assert client.get(f"/v1/experiments/{mine['id']}", headers=headers).status_code == 200


def test_reading_runs_needs_experiment_read(admin, client, key_headers):
    app_id = admin.create_app()
    writer = key_headers(admin.create_key(app_id, permissions=["experiment.write"]))
    run = record(client, writer)
    response = client.get(f"/v1/experiments/{run['id']}", headers=writer)
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "experiment.read"
