"""Roles end to end: each key does its job, and nothing else, on every data route.

- A Read-Only key, used as a dashboard or BI tool would, reads traces, spans,
  sessions, scores, datasets and metrics, and is refused (403) on every write
  and on templates and experiments.
- A Full Access key can call every route.
- A custom trace.read + score.write key works as a scoring worker.
"""

from __future__ import annotations

import pytest

from agentmark_gateway.permissions.catalog import ROLES
from tests.security.routes import DataRoute, call_example, data_routes, route_id
from tests.security.seed import DAY, seed_app

ROUTES = data_routes()
READ_ONLY = frozenset(ROLES["read-only"].permissions or ())
SCORING_WORKER = frozenset({"trace.read", "score.write"})


@pytest.fixture
def app(admin, client):
    app_id = admin.create_app()
    full = admin.create_key(app_id, role="full-access")["plaintext_key"]
    return seed_app(client, app_id, full, "alpha")


def _key_headers(admin, app, **key) -> dict[str, str]:
    created = admin.create_key(app.app_id, **key)
    return {"Authorization": f"Bearer {created['plaintext_key']}", "X-Agentmark-App-Id": app.app_id}


def _call(client, app, route: DataRoute, headers: dict[str, str]):
    method, path, _ = route
    return call_example(
        client, method=method, path=path, app_id=app.app_id, full_key=app.key, headers=headers
    )


def _assert_refused(response, route: DataRoute, held: frozenset[str]) -> None:
    missing = next(p for p in route[2] if p not in held)
    assert response.status_code == 403, f"{route_id(route)}: {response.text}"
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": f"Forbidden: missing required permission '{missing}'",
        "required_permission": missing,
    }


def test_a_read_only_key_serves_a_bi_tool_reading_everything_it_reports_on(admin, client, app):
    bi = _key_headers(admin, app, role="read-only")
    trace, span = app.trace_ids[0], app.span_ids[0]
    reads = [
        ("/v1/traces", {"start_date": DAY, "sort": "-cost"}),
        (f"/v1/traces/{trace}", {}),
        (f"/v1/traces/{trace}/spans", {}),
        (f"/v1/traces/{trace}/spans/{span}", {}),
        ("/v1/spans", {"type": "GENERATION"}),
        ("/v1/sessions", {"search": app.session_id}),
        (f"/v1/sessions/{app.session_id}/traces", {}),
        ("/v1/scores", {"name": app.score_name}),
        (f"/v1/scores/{app.score_id}", {}),
        ("/v1/scores/names", {}),
        ("/v1/scores/aggregations", {}),
        ("/v1/datasets", {}),
        (f"/v1/datasets/{app.dataset}/rows", {}),
        ("/v1/metrics", {"start_date": DAY, "end_date": DAY, "bucket": "hour"}),
    ]
    for path, params in reads:
        response = client.get(path, params=params, headers=bi)
        assert response.status_code == 200, f"{path}: {response.text}"
        data = response.json()["data"]
        assert data, f"{path} answered no data"
    summary = client.get("/v1/metrics", params=reads[-1][1], headers=bi).json()["data"]
    assert summary["summary"]["total_requests"] == 1


def test_the_read_only_role_is_exactly_the_reads_a_bi_tool_needs():
    assert {p.split(".")[0] for p in READ_ONLY} == {
        "trace",
        "span",
        "session",
        "score",
        "dataset",
        "metrics",
    }
    assert all(p.endswith(".read") for p in READ_ONLY)


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_a_read_only_key_reads_and_is_refused_every_write_templates_and_experiments(
    admin, client, app, route
):
    method, path, permissions = route
    response = _call(client, app, route, _key_headers(admin, app, role="read-only"))
    # The project configuration is published and read with the templates.
    refused = method != "GET" or path.startswith(
        ("/v1/templates", "/v1/prompts", "/v1/experiments", "/v1/runs", "/v1/config")
    )
    if refused:
        _assert_refused(response, route, READ_ONLY)
    else:
        assert set(permissions) <= READ_ONLY
        assert response.status_code == 200, f"{route_id(route)}: {response.text}"


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_a_full_access_key_can_call_every_route(admin, client, app, route):
    response = _call(client, app, route, _key_headers(admin, app, role="full-access"))
    assert response.status_code not in (401, 403), f"{route_id(route)}: {response.text}"
    assert 200 <= response.status_code < 300, f"{route_id(route)}: {response.text}"


def test_a_scoring_worker_key_reads_traces_and_posts_scores(admin, client, app):
    worker = _key_headers(admin, app, permissions=sorted(SCORING_WORKER))
    traces = client.get("/v1/traces", params={"limit": 10}, headers=worker).json()["data"]
    assert [t["id"] for t in traces] == app.trace_ids
    for trace in traces:
        detail = client.get(f"/v1/traces/{trace['id']}", headers=worker).json()["data"]
        judged = client.post(
            "/v1/scores",
            json={
                "resourceId": detail["id"],
                "name": "helpfulness",
                "score": 0.75,
                "source": "eval",
            },
            headers=worker,
        )
        assert judged.status_code == 201, judged.text
    batch = client.post(
        "/v1/scores/batch",
        json={"scores": [{"resource_id": t["id"], "name": "tone", "score": 1} for t in traces]},
        headers=worker,
    )
    assert batch.status_code == 201, batch.text
    # What the worker wrote is there, read back with a key that may read scores.
    full = {"Authorization": app.key, "X-Agentmark-App-Id": app.app_id}
    names = client.get("/v1/scores/names", headers=full).json()["data"]
    assert {"helpfulness", "tone"} <= set(names)
    assert client.get("/v1/scores", headers=worker).status_code == 403


@pytest.mark.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])
def test_a_scoring_worker_key_does_nothing_else(admin, client, app, route):
    _, _, permissions = route
    worker = _key_headers(admin, app, permissions=sorted(SCORING_WORKER))
    response = _call(client, app, route, worker)
    if set(permissions) <= SCORING_WORKER:
        assert 200 <= response.status_code < 300, f"{route_id(route)}: {response.text}"
    else:
        _assert_refused(response, route, SCORING_WORKER)
