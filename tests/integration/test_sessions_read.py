"""GET /v1/sessions and /v1/sessions/{sessionId}/traces."""

from __future__ import annotations

import pytest

from tests.fixtures.otlp import payloads, sdk


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


@pytest.fixture
def ids(client, headers):
    return payloads.seed_three_traces(client, headers)


def sessions(client, headers, **params):
    response = client.get("/v1/sessions", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_session_rolls_up_its_traces(client, headers, ids):
    body = sessions(client, headers)
    assert body["pagination"] == {"total": 2, "limit": 50, "offset": 0}
    onboarding = next(s for s in body["data"] if s["id"] == "s-1")
    assert onboarding == {
        "id": "s-1",
        "name": "Onboarding chat",
        "start": "2025-03-01T10:00:00Z",
        "end": "2025-03-02T10:00:00.300000Z",
        "first_seen": "2025-03-01T10:00:00Z",
        "last_seen": "2025-03-02T10:00:00.300000Z",
        "latency_ms": 86_400_300.0,
        # Tokens and cost come from the model-call children, which carry no session id.
        "trace_count": 2,
        "total_tokens": 1650,
        "input_tokens": 1100,
        "output_tokens": 550,
        "total_cost": pytest.approx(0.0075 + 0.000045),
        "user_count": 2,
    }
    unnamed = next(s for s in body["data"] if s["id"] == "s-2")
    assert unnamed["name"] == "s-2"


def test_sessions_come_most_recently_active_first_and_sort_on_request(client, headers, ids):
    assert [s["id"] for s in sessions(client, headers)["data"]] == ["s-2", "s-1"]
    assert [s["id"] for s in sessions(client, headers, sort="-trace_count")["data"]] == [
        "s-1",
        "s-2",
    ]
    assert [s["id"] for s in sessions(client, headers, sort="total_cost")["data"]] == ["s-2", "s-1"]
    assert [
        s["id"] for s in sessions(client, headers, sort_by="start", sort_order="asc")["data"]
    ] == [
        "s-1",
        "s-2",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"search": "s-2"}, ["s-2"]),
        ({"search": "ONBOARDING"}, ["s-1"]),
        ({"search": "%"}, []),
        ({"search": "s_"}, []),
        ({"start_date": "2025-03-02T12:00:00Z"}, ["s-2"]),
        ({"end_date": "2025-03-01"}, ["s-1"]),
        ({"start_date": "2025-03-02", "end_date": "2025-03-02"}, ["s-1"]),
        ({"start_date": "2026-01-01"}, []),
    ],
)
def test_sessions_filter_by_search_and_activity_dates(client, headers, ids, params, expected):
    body = sessions(client, headers, **params)
    assert [s["id"] for s in body["data"]] == expected
    assert body["pagination"]["total"] == len(expected)


def test_a_sessions_traces_are_listed_newest_first(client, headers, ids):
    response = client.get("/v1/sessions/s-1/traces", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [t["id"] for t in body["data"]] == [ids["second"], ids["first"]]
    assert body["pagination"]["total"] == 2
    assert body["data"][0]["status"] == "ERROR"


def test_an_unknown_session_is_a_404(client, headers, ids):
    response = client.get("/v1/sessions/no-such-session/traces", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


def test_sdk_sessions_from_with_agentmark_count_each_trace_once(client, headers):
    with sdk.recording() as exporter:
        sdk.run_agent(session_id="chat-42")
        sdk.run_agent(session_id="chat-42", fail_tool=True)
    payloads_body = sdk.as_sdk_json(exporter.get_finished_spans())
    response = client.post(
        "/v1/traces", content=payloads_body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200
    body = sessions(client, headers, search="chat-42")
    assert body["data"][0]["trace_count"] == 2
    assert body["data"][0]["total_tokens"] == 300
    assert body["data"][0]["name"] == "Support chat"


def test_invalid_session_queries_are_a_400(client, headers):
    for params in ({"sort": "bogus"}, {"start_date": "never"}, {"limit": 5000}):
        response = client.get("/v1/sessions", params=params, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_query_params"


def test_session_routes_need_session_read(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.read", "span.read"])
    for path in ("/v1/sessions", "/v1/sessions/s-1/traces"):
        response = client.get(path, headers=key_headers(key))
        assert response.status_code == 403
        assert response.json()["error"]["required_permission"] == "session.read"
