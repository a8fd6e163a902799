"""The dashboard's data pages keep apps apart: app A's pages show none of app B's
traces, spans, sessions, scores or templates, and B's ids under A's address are 404.

Both apps are seeded through the public API (tests/security/seed.py); every name in
B's data contains ``bravo``. A route added under ``/apps/{app_id}/`` with an id of
its own fails ``test_every_data_page_with_an_id_is_tried_here`` until a case here
tries B's ids on it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.permissions.enforce import all_routes
from agentmark_gateway.web.route import WebRoute
from tests.integration.test_web_traces import web_session
from tests.security.seed import Seeded, seed_app

# Every dashboard page whose address names a record of the app, and the cases below
# that try another app's record on it.
TRIED = {
    "/apps/{app_id}/traces/{trace_id}",
    "/apps/{app_id}/traces/{trace_id}/waterfall",
    "/apps/{app_id}/sessions/{session_id}",
    "/apps/{app_id}/templates/{path}",
    "/apps/{app_id}/experiments/runs/{run_id}",
    # Tried in tests/security/test_dataset_and_score_pages_isolation.py:
    "/apps/{app_id}/datasets/{name:path}",
    "/apps/{app_id}/traces/{trace_id}/dataset-rows",
}
# Settings pages with ids of their own, tried by tests/security/test_dashboard.py.
SETTINGS_IDS = ("{key_id}", "{user_id}", "{token}")


@pytest.fixture
def apps(admin: Any, client: TestClient) -> tuple[Seeded, Seeded]:
    a_id, b_id = admin.create_app("app-a"), admin.create_app("app-b")
    a_key = admin.create_key(a_id, role="full-access")["plaintext_key"]
    b_key = admin.create_key(b_id, role="full-access")["plaintext_key"]
    a = seed_app(client, a_id, a_key, "alpha", traces=1)
    b = seed_app(client, b_id, b_key, "bravo", traces=2)
    web_session(client, "owner@example.com")
    return a, b


def _nothing_of(b: Seeded, text: str, sent: tuple[str, ...] = ()) -> None:
    """No name or id of B's data in ``text``, apart from what the request itself sent
    (a filter's value stays in its field)."""
    for value in sent:
        text = text.replace(value, "")
    assert "bravo" not in text, text
    for record_id in b.ids:
        assert record_id not in text, f"B's id {record_id} leaked"


def test_every_data_page_with_an_id_is_tried_here(client: TestClient) -> None:
    paths = {
        route.path.replace("{session_id:path}", "{session_id}")
        .replace("{path:path}", "{path}")
        .replace("{run_id:path}", "{run_id}")
        for route in all_routes(client.app.routes)  # type: ignore[attr-defined]
        if isinstance(route, WebRoute) and route.path.startswith("/apps/{app_id}/")
    }
    with_ids = {
        path
        for path in paths
        if path.count("{") > 1 and not any(part in path for part in SETTINGS_IDS)
    }
    assert with_ids == TRIED


def test_a_s_lists_show_nothing_of_b_even_filtered_by_b_s_values(client, apps) -> None:
    a, b = apps
    base = f"/apps/{a.app_id}"
    pages = [
        ("/traces", "", "answer-alpha"),
        ("/sessions", "", "Chat alpha"),
        ("/templates", "", a.template_path),
        ("/experiments", "", "run-alpha"),
        ("/traces?user=", b.user_id, "No traces match"),
        ("/traces?session=", b.session_id, "No traces match"),
        ("/traces?name=", "answer-bravo", "No traces match"),
        ("/traces?run=", "run-bravo", "No traces match"),
        ("/sessions?search=", "bravo", "No sessions match"),
    ]
    for path, value, own in pages:
        page = client.get(base + path + value)
        assert page.status_code == 200, path
        _nothing_of(b, page.text, sent=(value,) if value else ())
        assert own in page.text, path
    # Not vacuous: B's own pages do show B's data.
    assert "answer-bravo" in client.get(f"/apps/{b.app_id}/traces").text


def test_b_s_ids_under_a_s_address_are_not_found(client, apps) -> None:
    a, b = apps
    base = f"/apps/{a.app_id}"
    trace_id = b.trace_ids[0]
    span_id = b.span_ids[0]
    tries = [
        f"{base}/traces/{trace_id}",
        f"{base}/traces/{trace_id.upper()}",
        f"{base}/traces/{trace_id}?span={span_id}",
        f"{base}/traces/{trace_id}?all=1",
        f"{base}/traces/{trace_id}/waterfall?from=0",
        f"{base}/sessions/{b.session_id}",
        f"{base}/templates/{b.template_path}",
        f"{base}/experiments/runs/{b.experiment_id}",
        f"{base}/experiments/compare?base={b.experiment_id}&run={b.experiment_id}",
        f"{base}/experiments/compare?base={a.experiment_id}&run={b.experiment_id}",
        f"{base}/experiments/compare?base={b.experiment_id}&run={a.experiment_id}",
    ]
    for path in tries:
        for headers in (
            {},
            {"HX-Request": "true"},
            {"HX-Request": "true", "HX-Target": "span-detail"},
        ):
            page = client.get(path, headers=headers, follow_redirects=False)
            assert page.status_code == 404, f"{path} {headers}: {page.status_code}"
            _nothing_of(
                b,
                page.text,
                sent=(
                    trace_id,
                    trace_id.upper(),
                    span_id,
                    b.session_id,
                    b.template_path,
                    b.experiment_id,
                ),
            )
    # B's span id on A's trace page shows A's root span, in the page or as the panel alone.
    for headers in ({}, {"HX-Request": "true", "HX-Target": "span-detail"}):
        own = client.get(f"{base}/traces/{a.trace_ids[0]}?span={span_id}", headers=headers)
        assert own.status_code == 200
        assert "answer-alpha" in own.text
        _nothing_of(b, own.text)
    # Not vacuous: the same ids open under B's own address.
    assert client.get(f"/apps/{b.app_id}/traces/{trace_id}").status_code == 200
    assert client.get(f"/apps/{b.app_id}/sessions/{b.session_id}").status_code == 200
    assert client.get(f"/apps/{b.app_id}/templates/{b.template_path}").status_code == 200
    assert client.get(f"/apps/{b.app_id}/experiments/runs/{b.experiment_id}").status_code == 200
    both = f"base={b.experiment_id}&run={b.experiment_id}"
    assert client.get(f"/apps/{b.app_id}/experiments/compare?{both}").status_code == 200
