"""One app's key never sees another app's traces, spans, sessions or metrics."""

from __future__ import annotations

import pytest

from tests.fixtures.otlp import payloads


@pytest.fixture
def apps(admin, client, key_headers):
    a = key_headers(admin.create_key(admin.create_app("app-a"), role="full-access"))
    b = key_headers(admin.create_key(admin.create_app("app-b"), role="full-access"))
    ids = payloads.seed_three_traces(client, a)
    return a, b, ids


def test_another_apps_lists_are_empty(client, apps):
    a, b, _ = apps
    for path in ("/v1/traces", "/v1/spans", "/v1/sessions"):
        assert client.get(path, headers=a).json()["pagination"]["total"] > 0
        body = client.get(path, headers=b).json()
        assert body == {"data": [], "pagination": {"total": 0, "limit": 50, "offset": 0}}, path


def test_another_apps_metrics_are_zero(client, apps):
    a, b, _ = apps
    params = {"start_date": "2025-03-01", "end_date": "2025-03-03", "bucket": "day"}
    assert (
        client.get("/v1/metrics", params=params, headers=a).json()["data"]["summary"][
            "total_requests"
        ]
        == 3
    )
    summary = client.get("/v1/metrics", params=params, headers=b).json()["data"]["summary"]
    assert summary["total_requests"] == 0
    assert summary["unique_users"] == 0
    assert summary["model_count"] == 0


def test_another_apps_records_are_404_by_id(client, apps):
    a, b, ids = apps
    trace_id = ids["first"]
    span_id = client.get(f"/v1/traces/{trace_id}/spans", headers=a).json()["data"][0]["id"]
    cases = [
        (f"/v1/traces/{trace_id}", "trace_not_found"),
        (f"/v1/traces/{trace_id}/spans", "trace_not_found"),
        (f"/v1/traces/{trace_id}/spans/{span_id}", "trace_not_found"),
        ("/v1/sessions/s-1/traces", "session_not_found"),
    ]
    for path, code in cases:
        assert client.get(path, headers=a).status_code == 200, path
        response = client.get(path, headers=b)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == code


def test_filters_by_another_apps_ids_find_nothing(client, apps):
    _, b, ids = apps
    for params in ({"trace_id": ids["first"]}, {"session_id": "s-1"}, {"user_id": "u-1"}):
        assert client.get("/v1/spans", params=params, headers=b).json()["pagination"]["total"] == 0
    assert (
        client.get("/v1/traces", params={"tag": "prod"}, headers=b).json()["pagination"]["total"]
        == 0
    )


def test_the_same_span_ids_in_two_apps_are_two_records(client, apps):
    a, b, _ = apps
    trace_id, spans = payloads.llm_trace(user_id="from-a", session_id="shared")
    payloads.post(client, a, spans)
    for span in spans:
        span["attributes"] = payloads.attributes({"agentmark.user_id": "from-b"})
    payloads.post(client, b, spans)

    assert client.get(f"/v1/traces/{trace_id}", headers=a).json()["data"]["user_id"] == "from-a"
    assert client.get(f"/v1/traces/{trace_id}", headers=b).json()["data"]["user_id"] == "from-b"
    assert client.get("/v1/sessions", headers=b).json()["pagination"]["total"] == 0


def test_a_key_sent_with_another_apps_id_is_refused(client, apps):
    a, b, _ = apps
    mixed = {"Authorization": a["Authorization"], "X-Agentmark-App-Id": b["X-Agentmark-App-Id"]}
    _, spans = payloads.llm_trace()
    assert client.post("/v1/traces", json=payloads.request(spans), headers=mixed).status_code == 401
    assert client.get("/v1/traces", headers=mixed).status_code == 401


def test_deleting_an_app_deletes_its_spans_traces_and_tags(admin, client, key_headers):
    from sqlalchemy import func, select

    from agentmark_gateway.traces.models import Span, Trace, TraceTag

    app_id = admin.create_app("doomed")
    headers = key_headers(admin.create_key(app_id, role="full-access"))
    payloads.seed_three_traces(client, headers)
    gateway = client.app.state.gateway

    async def counts():
        async with gateway.sessionmaker() as session:
            return [
                await session.scalar(select(func.count()).where(model.app_id == app_id))
                for model in (Span, Trace, TraceTag)
            ]

    assert client.portal.call(counts) == [6, 3, 4]
    response = client.delete(f"/v1/apps/{app_id}", headers=admin.headers)
    assert response.status_code == 204, response.text
    assert client.portal.call(counts) == [0, 0, 0]
