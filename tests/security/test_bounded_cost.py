"""Any request costs a bounded amount of time and memory, whatever its body.

A real gateway process gets each hostile request while another client polls
``/health``: the hostile request is answered with a clear 4xx within seconds, and
no poll waits 100 ms or more (one event loop serves both, so a request that held
it would show here). Then the controls behind it, one by one.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.requests import Request

from agentmark_gateway import error_handlers, pagination
from agentmark_gateway.bodies import MAX_GZIP_MEMBERS, SMALL_BODY_BYTES
from agentmark_gateway.traces.filters import MAX_LIST_VALUES
from tests.conftest import database_copy
from tests.fixtures.otlp import payloads
from tests.resilience.gateways import Admin, GatewayProcess, add_owner, key_headers
from tests.security.support import assert_envelope

MAX_BODY = 10 * 1024 * 1024  # the default AGENTMARK_MAX_BODY_BYTES
HEALTH_BUDGET = 0.1  # seconds: no /health poll may take this long
ANSWER_BUDGET = 5.0  # seconds: every hostile request is answered within this
PROBE_TIMEOUT = 10.0  # seconds a /health poll may wait before it counts as unanswered


@dataclass
class Served:
    base: str
    headers: dict[str, str]  # a full-access key of the app


@pytest.fixture(scope="module")
def served(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("bounded")
    with database_copy(template_database, root, "agw_bounded") as database_url:
        add_owner(database_url)
        server = GatewayProcess(database_url, root / "data")
        try:
            server.wait_ready()
            admin = Admin.sign_in(server.base)
            key = admin.create_key(admin.create_app(), role="full-access")
            yield Served(server.base, key_headers(key))
        finally:
            server.stop()


class HealthProbe:
    """Polls ``/health`` on its own connection until stopped; keeps every latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=PROBE_TIMEOUT) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = http.get("/health").status_code == 200
                except httpx.TimeoutException:
                    ok = True  # unanswered: the time it waited is its latency
                self.latencies.append(time.perf_counter() - started if ok else float("inf"))
                time.sleep(0.005)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        deadline = time.monotonic() + PROBE_TIMEOUT
        while not self.latencies:  # the connection is open and warm before we start
            assert time.monotonic() < deadline, "/health never answered"
            time.sleep(0.005)
        self.latencies.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)  # a poll or two after the answer, too
        self._stop.set()
        self._thread.join(timeout=40)


def _send_hostile(
    served: Served,
    send: Callable[[httpx.Client], httpx.Response],
    health_budget: float = HEALTH_BUDGET,
) -> dict:
    """Sends one hostile request while /health is polled; returns its error."""
    with (
        httpx.Client(base_url=served.base, timeout=ANSWER_BUDGET * 4) as http,
        HealthProbe(served.base) as probe,
    ):
        started = time.monotonic()
        response = send(http)
        took = time.monotonic() - started
    error = assert_envelope(response.status_code, response.content)
    assert took < ANSWER_BUDGET, f"answered in {took:.2f} s"
    assert len(probe.latencies) >= 3, probe.latencies
    slowest = max(probe.latencies)
    assert slowest < health_budget, f"/health took {slowest * 1000:.0f} ms during the request"
    return error


def _empty_gzip_members(total: int) -> bytes:
    member = gzip.compress(b"")
    return member * (total // len(member))


def _trace_request(**attributes: Any) -> bytes:
    trace = payloads.trace_id()
    return json.dumps(payloads.request([payloads.span(trace, attrs=attributes)])).encode()


def _tags_query(count: int) -> list[tuple[str, str]]:
    return [("tag", str(n)) for n in range(count)]  # 6,000 make a 54 KB query


def _unknown_keys(count: int) -> bytes:
    return json.dumps({f"k{n}": 0 for n in range(count)}, separators=(",", ":")).encode()


# --- the rule: /health answers throughout -------------------------------------------


@pytest.mark.slow
def test_gzip_member_bomb_on_ingest_is_refused_while_health_stays_fast(served):
    bomb = _empty_gzip_members(MAX_BODY)
    error = _send_hostile(
        served,
        lambda http: http.post(
            "/v1/traces",
            content=bomb,
            headers={
                **served.headers,
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        ),
    )
    assert error["code"] == "invalid_encoding"
    assert f"more than {MAX_GZIP_MEMBERS} gzip members" in error["message"]


@pytest.mark.slow
def test_gzip_member_bomb_on_template_upload_is_refused_while_health_stays_fast(served):
    bomb = _empty_gzip_members(MAX_BODY)
    for path in ("bomb.prompt.mdx", "bomb.jsonl"):
        error = _send_hostile(
            served,
            lambda http, path=path: http.put(
                "/v1/templates",
                params={"path": path},
                content=bomb,
                headers={**served.headers, "Content-Encoding": "gzip"},
            ),
        )
        assert error["code"] == "invalid_encoding"


@pytest.mark.slow
def test_a_million_key_sign_in_body_is_refused_while_health_stays_fast(served):
    body = _unknown_keys(1_000_000)
    error = _send_hostile(
        served,
        lambda http: http.post(
            "/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
        ),
    )
    assert error["code"] == "payload_too_large"


@pytest.mark.slow
def test_six_thousand_tags_are_refused_while_health_stays_fast(served):
    error = _send_hostile(
        served,
        lambda http: http.get("/v1/traces", params=_tags_query(6000), headers=served.headers),
    )
    assert error["code"] == "invalid_query_params"
    assert "tag" in error["message"]


@pytest.mark.slow
def test_deeply_nested_json_is_refused_while_health_stays_fast(served):
    deep = b"[" * 1_000_000 + b"]" * 1_000_000
    for path in ("/v1/traces", "/v1/scores", "/v1/datasets/deep/rows"):
        _send_hostile(
            served,
            lambda http, path=path: http.post(
                path, content=deep, headers={**served.headers, "Content-Type": "application/json"}
            ),
        )


@pytest.mark.slow
def test_huge_otlp_attribute_maps_are_refused_while_health_stays_fast(served):
    over = _trace_request(**{f"attribute.{n:07d}": "x" * 20 for n in range(300_000)})
    assert len(over) > MAX_BODY
    error = _send_hostile(
        served,
        lambda http: http.post(
            "/v1/traces",
            content=over,
            headers={**served.headers, "Content-Type": "application/json"},
        ),
    )
    assert error["code"] == "payload_too_large"
    inflating = gzip.compress(
        _trace_request(**{f"attribute.{n:07d}": "x" * 100 for n in range(200_000)})
    )
    assert len(inflating) < MAX_BODY
    error = _send_hostile(
        served,
        lambda http: http.post(
            "/v1/traces",
            content=inflating,
            headers={
                **served.headers,
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        ),
    )
    assert error["code"] == "payload_too_large"


# --- the controls ---------------------------------------------------------------------


@pytest.mark.slow
def test_sign_in_and_management_bodies_are_capped_small(served):
    padded = json.dumps({"email": "a@example.com", "password": "x" * SMALL_BODY_BYTES}).encode()
    with httpx.Client(base_url=served.base, timeout=30) as http:
        for path in ("/v1/auth/login", "/v1/apps", "/v1/api-keys", "/login"):
            response = http.post(path, content=padded, headers={"Content-Type": "application/json"})
            error = assert_envelope(response.status_code, response.content, expected=413)
            assert str(SMALL_BODY_BYTES) in error["message"]


@pytest.mark.slow
def test_validation_errors_are_capped_in_count_and_size(served):
    errors = [
        {"loc": ("body", f"k{n}"), "msg": "Extra inputs are not permitted", "type": "extra"}
        for n in range(3502)
    ]
    response = asyncio.run(
        error_handlers._validation_error(
            Request({"type": "http", "method": "POST", "path": "/", "headers": []}),
            RequestValidationError(errors),
        )
    )
    error = assert_envelope(response.status_code, response.body, expected=400)
    assert len(error["details"]) == error_handlers.MAX_REPORTED_ERRORS
    assert error["more_errors"] == 3502 - error_handlers.MAX_REPORTED_ERRORS
    assert len(response.body) < 10_000
    with httpx.Client(base_url=served.base, timeout=30) as http:
        long_name = http.post(
            "/v1/auth/login",
            json={"email": "a@example.com", "password": "x", "k" * 20_000: 1},
        )
    error = assert_envelope(long_name.status_code, long_name.content, expected=400)
    assert all(len(d["field"]) <= error_handlers.MAX_ERROR_TEXT for d in error["details"])
    assert len(long_name.content) < 2_000


@pytest.mark.slow
def test_an_object_of_many_unknown_keys_is_one_error_before_its_fields_are_read(served):
    body = _unknown_keys(700_000)
    assert SMALL_BODY_BYTES < len(body) < MAX_BODY
    error = _send_hostile(
        served,
        lambda http: http.post(
            "/v1/datasets/many-keys/rows",
            content=body,
            headers={**served.headers, "Content-Type": "application/json"},
        ),
        # Parsing 8 MB of JSON into 700,000 keys holds the event loop for the parse
        # itself (about 0.2 s here; the body limit bounds it); without the early
        # refusal, the 700,000 validation errors held it for seconds.
        health_budget=1.0,
    )
    assert error["code"] == "invalid_request_body"
    assert len(error["details"]) == 1
    assert "700000 fields" in error["message"]


@pytest.mark.slow
def test_tag_filters_are_capped_and_still_all_must_match(served):
    trace = payloads.trace_id()
    tags = [f"t{n}" for n in range(MAX_LIST_VALUES)]
    body = payloads.request([payloads.span(trace, attrs={"agentmark.tags": json.dumps(tags)})])
    with httpx.Client(base_url=served.base, timeout=30) as http:
        assert http.post("/v1/traces", json=body, headers=served.headers).status_code == 200
        every = http.get("/v1/traces", params=[("tag", t) for t in tags], headers=served.headers)
        assert [t["id"] for t in every.json()["data"]] == [trace], every.text
        one_more = [("tag", t) for t in tags] + [("tag", "missing")]
        assert http.get("/v1/traces", params=one_more[1:], headers=served.headers).json() == {
            "data": [],
            "pagination": {"total": 0, "limit": 50, "offset": 0},
        }
        too_many = http.get("/v1/traces", params=one_more, headers=served.headers)
        error = assert_envelope(too_many.status_code, too_many.content, expected=400)
        assert f"at most {MAX_LIST_VALUES}" in error["message"]


def _sqlite_error(statement: str, path: str = ":memory:", **connect: Any) -> OperationalError:
    """The error SQLite really raises for ``statement``, as SQLAlchemy wraps it."""
    connection = sqlite3.connect(path, **connect)
    try:
        connection.execute(statement)
    except sqlite3.OperationalError as exc:
        return OperationalError(statement, None, exc)
    finally:
        connection.close()
    raise AssertionError(f"{statement!r} did not fail")


def _status_of(exc: Exception) -> int:
    import asyncio

    request = Request({"type": "http", "method": "GET", "path": "/v1/traces", "headers": []})
    return asyncio.run(error_handlers._dbapi_error(request, exc)).status_code


def test_sqlite_errors_are_an_outage_only_when_the_database_is_away(tmp_path):
    too_deep = "SELECT " + "(" * 5000 + "1" + ")" * 5000
    too_big = "SELECT " + " + ".join(["1"] * 50_000)
    assert _status_of(_sqlite_error(too_deep)) == 400
    assert _status_of(_sqlite_error(too_big)) == 400
    assert _status_of(_sqlite_error("SELECT * FROM no_such_table")) == 500

    locked = tmp_path / "locked.db"
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        busy = _sqlite_error("SELECT * FROM t", str(locked), timeout=0)
    finally:
        holder.close()
    assert _status_of(busy) == 503
    readonly = _sqlite_error("CREATE TABLE u (x)", f"file:{locked}?mode=ro", uri=True)
    assert _status_of(readonly) == 503
    missing = tmp_path / "nowhere" / "gateway.db"
    with pytest.raises(sqlite3.OperationalError) as cannot_open:
        sqlite3.connect(missing)
    assert _status_of(OperationalError("connect", None, cannot_open.value)) == 503


def test_page_totals_count_no_further_than_the_bound(client, admin, key_headers, monkeypatch):
    monkeypatch.setattr(pagination, "TOTAL_BOUND", 3)
    headers = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    trace = payloads.trace_id()
    spans = [payloads.span(trace) for _ in range(10)]
    assert client.post("/v1/traces", json=payloads.request(spans), headers=headers).is_success

    first = client.get("/v1/spans", params={"limit": 2}, headers=headers)
    assert first.json()["pagination"] == {"total": 4, "limit": 2, "offset": 0}
    assert first.headers[pagination.TOTAL_CAPPED_HEADER] == "true"
    last = client.get("/v1/spans", params={"limit": 2, "offset": 8}, headers=headers)
    assert last.json()["pagination"] == {"total": 10, "limit": 2, "offset": 8}
    assert pagination.TOTAL_CAPPED_HEADER not in last.headers
    for path in ("/v1/traces", f"/v1/traces/{trace}/spans", "/v1/sessions", "/v1/scores"):
        response = client.get(path, params={"limit": 2}, headers=headers)
        assert response.status_code == 200, response.text
    trace_spans = client.get(f"/v1/traces/{trace}/spans", params={"limit": 2}, headers=headers)
    assert trace_spans.json()["pagination"]["total"] == 4
