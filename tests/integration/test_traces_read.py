"""GET /v1/traces and /v1/traces/{traceId}: derived figures, filters, sorting, the span tree."""

from __future__ import annotations

import pytest

from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.payloads import MS, at


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


@pytest.fixture
def ids(client, headers):
    return payloads.seed_three_traces(client, headers)


def listed(client, headers, **params):
    response = client.get("/v1/traces", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def order(client, headers, ids, **params):
    by_id = {v: k for k, v in ids.items()}
    return [by_id[t["id"]] for t in listed(client, headers, **params)["data"]]


def test_each_trace_row_carries_its_derived_figures(client, headers, ids):
    body = listed(client, headers)
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}
    second = next(t for t in body["data"] if t["id"] == ids["second"])
    assert second == {
        "id": ids["second"],
        "name": "answer",
        "status": "ERROR",
        "start": "2025-03-02T10:00:00Z",
        "end": "2025-03-02T10:00:00.300000Z",
        "latency_ms": 300.0,
        "cost": pytest.approx(0.0075),
        "tokens": 1500,
        "input_tokens": 1000,
        "output_tokens": 500,
        "span_count": 2,
        "model": "gpt-4o",
        "user_id": "u-2",
        "session_id": "s-1",
        "dataset_run_id": None,
        "tags": ["beta", "prod"],  # sorted
        "api_key_id": second["api_key_id"],  # which key: tests/integration/test_trace_keys.py
    }
    assert second["api_key_id"].startswith("key_")


def test_traces_come_newest_first_by_default(client, headers, ids):
    assert order(client, headers, ids) == ["third", "second", "first"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "ERROR"}, ["second"]),
        ({"status": "ok"}, ["third", "first"]),
        ({"status": "UNSET"}, []),
        ({"name": "summarize"}, ["third"]),
        ({"user_id": "u-1"}, ["third", "first"]),
        ({"session_id": "s-1"}, ["second", "first"]),
        ({"tag": "prod"}, ["second", "first"]),
        ({"tag": ["prod", "beta"]}, ["second"]),
        ({"tag": "nope"}, []),
        ({"model": "gpt-4o"}, ["second"]),
        ({"dataset_run_id": "run-1"}, ["third"]),
        ({"start_date": "2025-03-02"}, ["third", "second"]),
        ({"end_date": "2025-03-02"}, ["second", "first"]),
        ({"start_date": "2025-03-02T12:00:00Z"}, ["third"]),
        (
            {"start_date": "2025-03-02T11:00:00+02:00", "end_date": "2025-03-02T10:00:00"},
            ["second"],
        ),
        ({"user_id": "u-1", "tag": "beta"}, ["third"]),
        ({"user_id": "u-9"}, []),
    ],
)
def test_filters_narrow_the_list(client, headers, ids, params, expected):
    assert order(client, headers, ids, **params) == expected
    assert listed(client, headers, **params)["pagination"]["total"] == len(expected)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sort": "cost"}, ["first", "third", "second"]),
        ({"sort": "-duration"}, ["second", "first", "third"]),
        ({"sort": "start_time"}, ["first", "second", "third"]),
        ({"sort": "-tokens"}, ["second", "first", "third"]),
        ({"sort_by": "latency_ms", "sort_order": "asc"}, ["third", "first", "second"]),
        ({"sort_by": "start", "sort_order": "desc"}, ["third", "second", "first"]),
    ],
)
def test_traces_sort_by_start_duration_cost_or_tokens(client, headers, ids, params, expected):
    assert order(client, headers, ids, **params) == expected


def test_pages_are_stable_and_report_the_total(client, headers, ids):
    pages = [listed(client, headers, limit=1, offset=n) for n in range(4)]
    assert [len(p["data"]) for p in pages] == [1, 1, 1, 0]
    assert all(p["pagination"]["total"] == 3 for p in pages)
    assert pages[1]["pagination"] == {"total": 3, "limit": 1, "offset": 1}
    assert pages[1]["data"][0]["id"] == ids["second"]


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "yesterday"},
        {"end_date": "2025-13-01"},
        {"start_date": "2025-03-03", "end_date": "2025-03-01"},
        {"status": "maybe"},
        {"sort": "colour"},
        {"sort_by": "cost", "sort_order": "sideways"},
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
    ],
)
def test_invalid_query_parameters_are_a_400(client, headers, params):
    response = client.get("/v1/traces", params=params, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_a_trace_comes_with_its_spans_and_their_tree(client, headers):
    trace = payloads.trace_id()
    start = at("2025-04-01T08:00:00Z")
    root, plan, search, answer, fetch = (payloads.span_id() for _ in range(5))
    spans = [
        payloads.span(
            trace,
            root,
            name="agent",
            start_ns=start,
            duration_ms=50,
            attrs={
                "agentmark.trace_name": "travel agent",
                "agentmark.request.input": "plan a trip",
                "agentmark.response.output": "done",
            },
        ),
        payloads.span(
            trace,
            answer,
            name="answer",
            parent=root,
            start_ns=start + 30 * MS,
            duration_ms=10,
            attrs={"agentmark.span.kind": "llm", "gen_ai.request.model": "gpt-4o"},
        ),
        payloads.span(trace, plan, name="plan", parent=root, start_ns=start + MS, duration_ms=20),
        payloads.span(
            trace, search, name="search", parent=plan, start_ns=start + 2 * MS, duration_ms=5
        ),
        payloads.span(
            trace, fetch, name="fetch", parent=search, start_ns=start + 3 * MS, duration_ms=1
        ),
    ]
    payloads.post(client, headers, spans)

    response = client.get(f"/v1/traces/{trace}", headers=headers)

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["name"] == "travel agent"
    assert data["input"] == "plan a trip"
    assert data["output"] == "done"
    assert data["span_count"] == 5
    assert [s["name"] for s in data["spans"]] == ["agent", "plan", "search", "fetch", "answer"]
    assert data["spans"][4]["type"] == "GENERATION"
    assert data["spans"][1]["parent_id"] == root

    def shape(node):
        return {node["name"]: [shape(child) for child in node["children"]]}

    assert [shape(n) for n in data["tree"]] == [
        {"agent": [{"plan": [{"search": [{"fetch": []}]}]}, {"answer": []}]}
    ]


def test_spans_whose_parent_never_arrived_are_roots_of_the_tree(client, headers):
    trace = payloads.trace_id()
    start = at("2025-04-01T08:00:00Z")
    a, b = payloads.span_id(), payloads.span_id()
    payloads.post(
        client,
        headers,
        [
            payloads.span(trace, a, name="orphan", parent=payloads.span_id(), start_ns=start),
            payloads.span(trace, b, name="child", parent=a, start_ns=start + MS),
        ],
    )
    data = client.get(f"/v1/traces/{trace}", headers=headers).json()["data"]
    assert data["name"] == "orphan"
    assert [(n["name"], [c["name"] for c in n["children"]]) for n in data["tree"]] == [
        ("orphan", ["child"])
    ]


def test_spans_that_parent_each_other_in_a_cycle_are_still_shown(client, headers):
    trace = payloads.trace_id()
    a, b = payloads.span_id(), payloads.span_id()
    start = at("2025-04-01T08:00:00Z")
    payloads.post(
        client,
        headers,
        [
            payloads.span(trace, a, name="a", parent=b, start_ns=start),
            payloads.span(trace, b, name="b", parent=a, start_ns=start + MS),
        ],
    )
    data = client.get(f"/v1/traces/{trace}", headers=headers).json()["data"]
    assert [s["name"] for s in data["spans"]] == ["a", "b"]
    assert data["tree"][0]["name"] == "a"
    assert data["tree"][0]["children"][0]["name"] == "b"


def test_a_very_deep_trace_is_served_with_its_tree_capped(client, headers):
    trace = payloads.trace_id()
    start = at("2025-04-01T08:00:00Z")
    ids = [payloads.span_id() for _ in range(300)]
    spans = [
        payloads.span(
            trace, sid, name=f"level-{n}", parent=ids[n - 1] if n else None, start_ns=start + n
        )
        for n, sid in enumerate(ids)
    ]
    payloads.post(client, headers, spans)
    response = client.get(f"/v1/traces/{trace}", headers=headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data["spans"]) == 300
    depth, node = 0, data["tree"][0]
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth <= 64


def test_trace_ids_in_the_path_are_case_insensitive(client, headers, ids):
    response = client.get(f"/v1/traces/{ids['first'].upper()}", headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == ids["first"]


@pytest.mark.parametrize("trace_id", ["f" * 32, "not-a-trace-id", "0" * 32])
def test_an_unknown_trace_is_a_404(client, headers, ids, trace_id):
    response = client.get(f"/v1/traces/{trace_id}", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "trace_not_found"


def test_reading_traces_needs_trace_read(admin, client, key_headers, ids):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["span.read", "session.read"])
    response = client.get("/v1/traces", headers=key_headers(key))
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "trace.read"
