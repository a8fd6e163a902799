"""Request ids, log lines and /metrics as an operator and a client see them."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from agentmark_gateway.app import create_app
from agentmark_gateway.observability.logs import JsonFormatter, RequestIdFilter
from agentmark_gateway.settings import Settings
from tests.conftest import Admin, add_user, altered
from tests.fixtures.otlp import payloads

TOKEN = "metrics-token-for-tests-0123"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
PATH = "support/greeting.prompt.mdx"
AST = {"type": "root", "children": [{"type": "text", "value": "Hello"}]}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "metrics_token": SecretStr(TOKEN),
            "rate_limit_per_key": 1000,
            "invalidation_poll_seconds": 3600.0,
        }
    )


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every log record, at every level, as the server's JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_seen(found: Samples, method: str, route: str, status: int) -> float:
    labels = frozenset({("method", method), ("route", route), ("status", str(status))})
    return found.get(("agentmark_http_request_duration_seconds_count", labels), 0.0)


def refusals(found: Samples, route: str, status: int, code: str) -> float:
    labels = frozenset({("route", route), ("status", str(status)), ("code", code)})
    return found.get(("agentmark_http_refusals_total", labels), 0.0)


@pytest.fixture
def reader(admin: Admin, client: TestClient, key_headers) -> dict[str, Any]:
    app_id = admin.create_app()
    writer = key_headers(admin.create_key(app_id, role="full-access"))
    put = client.put("/v1/templates", params={"path": PATH}, json=AST, headers=writer)
    assert put.status_code == 201, put.text
    key = admin.create_key(app_id, role="sdk")
    return {"app_id": app_id, "key": key, "headers": key_headers(key), "writer": writer}


# -- request ids --------------------------------------------------------------------


def test_every_answer_carries_a_request_id_and_a_sane_sent_one_is_kept(client, reader):
    made_up = {"Authorization": "sk_agentmark_nope", "X-Agentmark-App-Id": reader["app_id"]}
    answers = [
        client.get("/health"),
        client.get("/v1/templates", params={"path": PATH}, headers=reader["headers"]),
        client.get("/v1/templates", params={"path": PATH}, headers=made_up),  # the gate's 401
        client.get("/no/such/page"),
    ]
    ids = [answer.headers.get("x-request-id") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)

    kept = client.get("/health", headers={"X-Request-Id": "lb-7f3a:42"})
    assert kept.headers["x-request-id"] == "lb-7f3a:42"
    for unfit in ("x" * 129, "two words"):
        replaced = client.get("/health", headers={"X-Request-Id": unfit})
        assert replaced.headers["x-request-id"] not in (unfit, "")


def test_the_log_lines_of_a_request_carry_its_id(client, json_lines):
    log = logging.getLogger("agentmark_gateway.tests.observability")

    async def noisy() -> dict[str, str]:
        log.info("handling")
        log.warning("still handling")
        return {"ok": "yes"}

    client.app.add_api_route("/noisy-for-test", noisy)
    log.info("before any request")
    answer = client.get("/noisy-for-test", headers={"X-Request-Id": "req-log-1"})
    assert answer.status_code == 200
    other = client.get("/noisy-for-test")

    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    mine = [e for e in entries if e["logger"] == log.name]
    assert [(e["message"], e.get("request_id")) for e in mine] == [
        ("before any request", None),
        ("handling", "req-log-1"),
        ("still handling", "req-log-1"),
        ("handling", other.headers["x-request-id"]),
        ("still handling", other.headers["x-request-id"]),
    ]


def test_no_key_and_no_session_token_reaches_a_log_line(client, admin, reader, json_lines, caplog):
    caplog.set_level(logging.DEBUG)
    raw_key = reader["key"]["plaintext_key"]
    app_id = reader["app_id"]
    _, spans = payloads.llm_trace()
    sent = [
        client.get("/v1/templates", params={"path": PATH}, headers=reader["headers"]),
        client.get("/v1/templates", params={"path": PATH}, headers=reader["headers"]),
        client.post(
            "/v1/traces",
            content=json.dumps(payloads.request(spans)),
            headers={**reader["headers"], "Content-Type": "application/json"},
        ),
        client.get(
            "/v1/traces",
            headers={"Authorization": f"Bearer {raw_key}", "X-Agentmark-App-Id": app_id},
        ),
        # A wrong app, a broken key, a key where a session belongs, a session where a key does.
        client.get("/v1/traces", headers={"Authorization": raw_key, "X-Agentmark-App-Id": "app_x"}),
        client.get(
            "/v1/traces",
            headers={"Authorization": altered(raw_key), "X-Agentmark-App-Id": app_id},
        ),
        client.get("/v1/apps", headers={"Authorization": f"Bearer {raw_key}"}),
        client.get("/v1/traces", headers={**admin.headers, "X-Agentmark-App-Id": app_id}),
        client.get("/v1/apps", headers=admin.headers),
        client.get("/metrics", headers={"Authorization": f"Bearer {raw_key}"}),
        client.get("/metrics", headers=admin.headers),
    ]
    # The sdk role reads templates and writes traces, and may not read them (403).
    assert [answer.status_code for answer in sent] == [
        200,
        200,
        200,
        403,
        401,
        401,
        401,
        401,
        200,
        401,
        401,
    ]
    rolled = client.post(
        f"/v1/api-keys/{reader['key']['id']}/roll",
        headers={**admin.headers, "X-Agentmark-App-Id": app_id},
    )
    assert rolled.status_code in (200, 201), rolled.text
    new_key = rolled.json()["data"]["plaintext_key"]

    logged = json_lines.getvalue() + "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    session = admin.token
    for secret in (raw_key, raw_key[len("sk_agentmark_") :], new_key, session, session[4:], TOKEN):
        assert secret not in logged


# -- /metrics -------------------------------------------------------------------------


def test_metrics_are_off_by_default(settings):
    with TestClient(create_app(settings.model_copy(update={"metrics_token": None}))) as client:
        answer = client.get("/metrics", headers=SCRAPE)
        assert answer.status_code == 404
        assert "agentmark_" not in answer.text


def test_metrics_ask_for_their_token_and_nothing_else(client, admin, reader):
    raw_key = reader["key"]["plaintext_key"]
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-of-some-length"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {raw_key}", "X-Agentmark-App-Id": reader["app_id"]},
        {"Authorization": raw_key, "X-Agentmark-App-Id": reader["app_id"]},
        admin.headers,
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}
        assert refused.headers["www-authenticate"] == "Bearer"
    assert client.post("/metrics", headers=SCRAPE).status_code == 405
    assert client.get("/metrics", headers=SCRAPE).status_code == 200


def test_requests_are_counted_by_route_template_and_status(client, reader, admin):
    read = lambda headers: client.get("/v1/templates", params={"path": PATH}, headers=headers)  # noqa: E731
    before = scrape(client)
    assert read(reader["headers"]).status_code == 200  # the handler
    assert read(reader["headers"]).status_code == 200  # the gate's cache
    trace_id = uuid.uuid4().hex
    assert client.get(f"/v1/traces/{trace_id}", headers=reader["writer"]).status_code == 404
    assert client.get(f"/made/up/{trace_id}").status_code == 404
    after = scrape(client)

    def grew(method: str, route: str, status: int) -> float:
        return requests_seen(after, method, route, status) - requests_seen(
            before, method, route, status
        )

    assert grew("GET", "/v1/templates", 200) == 2
    assert grew("GET", "/v1/traces/{traceId}", 404) == 1
    assert grew("GET", "unmatched", 404) == 1
    # Bounded: a raw path never becomes a label.
    assert not any(trace_id in value for _, labels in after for _, value in labels)


def test_refusals_are_counted_by_status_and_error_code(client, admin, reader, key_headers):
    app_id = reader["app_id"]
    made_up = {"Authorization": "sk_agentmark_nope", "X-Agentmark-App-Id": app_id}
    tracer = key_headers(admin.create_key(app_id, permissions=["trace.read"]))
    limited = key_headers(admin.create_key(app_id, role="sdk", rate_limit_per_minute=1))
    before = scrape(client)
    read = lambda headers: client.get("/v1/templates", params={"path": PATH}, headers=headers)  # noqa: E731
    assert read(made_up).status_code == 401
    assert read({}).status_code == 401
    assert read(tracer).status_code == 403
    statuses = [read(limited).status_code for _ in range(3)]
    assert statuses.count(429) >= 1
    after = scrape(client)

    def grew(status: int, code: str) -> float:
        return refusals(after, "/v1/templates", status, code) - refusals(
            before, "/v1/templates", status, code
        )

    assert grew(401, "unauthorized") == 2
    assert grew(403, "forbidden") == 1
    assert grew(429, "rate_limited") == statuses.count(429)
    limited_key = ("agentmark_rate_limit_refusals_total", frozenset({("route", "/v1/templates")}))
    assert after[limited_key] - before.get(limited_key, 0.0) == statuses.count(429)


def test_spans_and_the_database_pool_are_reported(client, reader):
    before = scrape(client)
    _, spans = payloads.llm_trace()
    posted = client.post(
        "/v1/traces",
        content=json.dumps(payloads.request(spans)),
        headers={**reader["writer"], "Content-Type": "application/json"},
    )
    assert posted.status_code == 200, posted.text
    after = scrape(client)
    spans_key: tuple[str, frozenset[tuple[str, str]]] = (
        "agentmark_spans_ingested_total",
        frozenset(),
    )
    assert after[spans_key] - before[spans_key] == 2
    assert after[("agentmark_db_pool_size", frozenset())] >= 1
    assert after[("agentmark_db_pool_checked_out", frozenset())] >= 0
    assert ("agentmark_write_queue_depth", frozenset()) in after


def test_a_fresh_app_starts_its_request_counts_at_zero(settings):
    with TestClient(create_app(settings)) as client:
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        assert admin.create_app()
        found = scrape(client)
        assert requests_seen(found, "POST", "/v1/apps", 201) == 1
