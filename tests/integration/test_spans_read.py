"""Span routes: a trace's spans, one span in full, and the filtered list of all spans."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.fixtures.otlp import payloads


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


@pytest.fixture
def ids(client, headers):
    return payloads.seed_three_traces(client, headers)


KITCHEN_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def kitchen(client, headers):
    response = client.post("/v1/traces", json=payloads.load("kitchen_sink.json"), headers=headers)
    assert response.status_code == 200
    return KITCHEN_TRACE


def spans(client, headers, **params):
    response = client.get("/v1/spans", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_traces_spans_come_in_start_order_with_their_figures(client, headers, kitchen):
    response = client.get(f"/v1/traces/{kitchen}/spans", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"]["total"] == 3
    root, chat, tool = body["data"]
    assert [root["name"], chat["name"], tool["name"]] == [
        "plan-trip",
        "chat gpt-4o",
        "lookup-hotels",
    ]
    assert root["metadata"] == {"region": "eu-west", "attempt": "2"}
    assert root["service_name"] == "checkout-worker"
    assert root["timestamp"] == "2025-01-01T09:00:00Z"
    assert root["duration_ms"] == 250.0
    assert chat == {
        **chat,
        "parent_id": "b7ad6b7169203331",
        "type": "GENERATION",
        "span_kind": "llm",
        "model": "gpt-4o",
        "input_tokens": 2000,
        "output_tokens": 1000,
        "tokens": 3000,
        "cost": pytest.approx(0.015),
        "status": "ERROR",
        "status_message": "rate limited, retried",
    }
    assert (tool["type"], tool["span_kind"], tool["cost"]) == ("SPAN", "tool", 0.5)
    assert "input" not in root and "attributes" not in root


def test_a_traces_spans_are_paginated(client, headers, kitchen):
    body = client.get(
        f"/v1/traces/{kitchen}/spans", params={"limit": 2, "offset": 2}, headers=headers
    ).json()
    assert [s["name"] for s in body["data"]] == ["lookup-hotels"]
    assert body["pagination"] == {"total": 3, "limit": 2, "offset": 2}


def test_one_span_comes_with_attributes_events_links_input_and_output(client, headers, kitchen):
    response = client.get(f"/v1/traces/{kitchen}/spans/00f067aa0ba902b7", headers=headers)
    assert response.status_code == 200
    span = response.json()["data"]
    assert span["input"] == "Plan 3 days in Lisbon"
    assert span["output"] == "Day 1: Alfama"
    assert span["finish_reason"] == '["stop"]'
    assert span["otel_kind"] == "CLIENT"
    assert span["scope_name"] == "kitchen-sink"
    assert span["attributes"]["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert span["links"] == [
        {
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "trace_state": None,
            "attributes": {"why": "retry of"},
        }
    ]
    root = client.get(f"/v1/traces/{kitchen}/spans/B7AD6B7169203331", headers=headers).json()[
        "data"
    ]
    assert root["events"] == [
        {
            "name": "cache-miss",
            "timestamp": "2025-01-01T09:00:00.100000Z",
            "attributes": {"key": "lisbon"},
        }
    ]
    assert root["input"] == '{"city":"Lisbon"}'


def test_an_unknown_span_of_a_known_trace_is_span_not_found(client, headers, kitchen):
    response = client.get(f"/v1/traces/{kitchen}/spans/{'1' * 16}", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "span_not_found"


def test_a_span_of_an_unknown_trace_is_trace_not_found(client, headers, kitchen):
    for path in (f"/v1/traces/{'1' * 32}/spans/00f067aa0ba902b7", f"/v1/traces/{'1' * 32}/spans"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "trace_not_found"


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"type": "GENERATION"}, ["chat gpt-4o"]),
        ({"type": "generation"}, ["chat gpt-4o"]),
        ({"type": "SPAN"}, ["lookup-hotels", "plan-trip"]),
        ({"type": "tool"}, ["lookup-hotels"]),
        ({"type": "EVENT"}, []),
        ({"status": "ERROR"}, ["chat gpt-4o"]),
        ({"status": "unset"}, ["lookup-hotels"]),
        ({"name": "plan-trip"}, ["plan-trip"]),
        ({"model": "gpt-4o"}, ["chat gpt-4o"]),
        ({"min_duration": 200}, ["chat gpt-4o", "plan-trip"]),
        ({"max_duration": 20}, ["lookup-hotels"]),
        ({"min_duration": 100, "max_duration": 210}, ["chat gpt-4o"]),
        ({"start_date": "2025-01-01T09:00:00.200Z"}, ["lookup-hotels"]),
        ({"end_date": "2025-01-01T09:00:00.005Z"}, ["plan-trip"]),
        ({"trace_id": KITCHEN_TRACE.upper()}, ["lookup-hotels", "chat gpt-4o", "plan-trip"]),
        # The session is set on the root only; its children belong to the session too.
        ({"session_id": "sess-kitchen"}, ["lookup-hotels", "chat gpt-4o", "plan-trip"]),
        ({"user_id": "user-from-resource"}, ["lookup-hotels", "chat gpt-4o", "plan-trip"]),
        ({"user_id": "someone-else"}, []),
    ],
)
def test_spans_filter_by_type_status_name_model_duration_time_trace_user_and_session(
    client, headers, kitchen, params, names
):
    body = spans(client, headers, **params)
    assert [s["name"] for s in body["data"]] == names  # newest first
    assert body["pagination"]["total"] == len(names)


def test_span_filters_on_users_and_sessions_follow_the_trace(client, headers, ids):
    body = spans(client, headers, user_id="u-1")
    assert {s["trace_id"] for s in body["data"]} == {ids["first"], ids["third"]}
    assert body["pagination"]["total"] == 4
    body = spans(client, headers, session_id="s-1", type="GENERATION")
    assert sorted(s["model"] for s in body["data"]) == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize(
    "params",
    [
        {"min_duration": -1},
        {"max_duration": "long"},
        {"start_date": "03/01/2025"},
        {"status": "fine"},
    ],
)
def test_invalid_span_filters_are_a_400(client, headers, params):
    response = client.get("/v1/spans", params=params, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_all_spans_are_paginated_newest_first(client, headers, ids):
    first = spans(client, headers, limit=4)
    second = spans(client, headers, limit=4, offset=4)
    assert first["pagination"]["total"] == 6
    assert len(first["data"]) == 4 and len(second["data"]) == 2
    starts = [datetime.fromisoformat(s["timestamp"]) for s in first["data"] + second["data"]]
    assert starts == sorted(starts, reverse=True)


def test_span_routes_need_span_read(admin, client, key_headers, kitchen):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.read"])
    for path in ("/v1/spans", f"/v1/traces/{kitchen}/spans"):
        response = client.get(path, headers=key_headers(key))
        assert response.status_code == 403
        assert response.json()["error"]["required_permission"] == "span.read"
