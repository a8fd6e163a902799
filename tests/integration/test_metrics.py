"""GET /v1/metrics: a summary and a time series over the app's traces."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.payloads import at


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


@pytest.fixture
def ids(client, headers):
    ids = payloads.seed_three_traces(client, headers)
    # A fourth on the first day, and one outside every range below.
    ids["fourth"], spans = payloads.llm_trace(
        start_ns=at("2025-03-01T11:30:00Z"), user_id="u-1", duration_ms=1000, model="gpt-4o-mini"
    )
    payloads.post(client, headers, spans)
    _, spans = payloads.llm_trace(start_ns=at("2025-02-01T00:00:00Z"), user_id="u-old")
    payloads.post(client, headers, spans)
    return ids


def metrics(client, headers, **params):
    response = client.get("/v1/metrics", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_the_summary_counts_traces_as_requests(client, headers, ids):
    data = metrics(client, headers, start_date="2025-03-01", end_date="2025-03-03", bucket="day")
    assert data["bucket"] == "day"
    assert data["start_date"] == "2025-03-01T00:00:00Z"
    assert data["end_date"] == "2025-03-03T23:59:59.999999Z"
    summary = data["summary"]
    cost = 0.000045 + 0.0075 + 0.000048 + 0.000045
    assert summary == {
        "total_requests": 4,
        "success_count": 3,
        "error_count": 1,
        "llm_calls": 4,
        "total_cost": pytest.approx(cost),
        "total_tokens": 1650 + 20 + 150,
        "input_tokens": 1110 + 100,
        "output_tokens": 560 + 50,
        "avg_latency_ms": pytest.approx((100 + 300 + 50 + 1000) / 4),
        "p50_latency_ms": 100.0,
        "p95_latency_ms": 1000.0,
        "unique_users": 2,
        "model_count": 3,
        "avg_cost_per_request": pytest.approx(cost / 4),
        "avg_input_tokens_per_request": pytest.approx(1210 / 4),
        "avg_output_tokens_per_request": pytest.approx(610 / 4),
        "avg_total_tokens_per_request": pytest.approx(1820 / 4),
    }


def test_the_daily_series_has_one_point_per_day(client, headers, ids):
    series = metrics(client, headers, start_date="2025-03-01", end_date="2025-03-03", bucket="day")[
        "time_series"
    ]
    assert [(p["date"], p["hour"], p["requests"], p["errors"]) for p in series] == [
        ("2025-03-01", 0, 2, 0),
        ("2025-03-02", 0, 1, 1),
        ("2025-03-03", 0, 1, 0),
    ]
    first = series[0]
    assert first["start"] == "2025-03-01T00:00:00Z"
    assert first["successes"] == 2
    assert first["tokens"] == 300
    assert first["avg_latency_ms"] == pytest.approx(550.0)
    assert first["unique_users"] == 1


def test_each_point_has_its_latency_percentiles(client, headers, ids):
    series = metrics(client, headers, start_date="2025-03-01", end_date="2025-03-04", bucket="day")[
        "time_series"
    ]
    spreads = [(p["p50_latency_ms"], p["p95_latency_ms"]) for p in series]
    # Day one holds traces of 100 and 1000 ms: the median is the first, p95 the second.
    assert spreads == [(100.0, 1000.0), (300.0, 300.0), (50.0, 50.0), (0.0, 0.0)]


def test_percentiles_are_nearest_rank_on_every_database(client, headers):
    # 10, 20, ..., 200 ms in one hour: nearest rank gives 100 and 190 ms, where an
    # interpolating percentile (percentile_cont) would give 105 and 190.5.
    spans = []
    for n in range(1, 21):
        spans += payloads.llm_trace(
            start_ns=at("2025-04-01T09:00:00Z") + n * 10**9, duration_ms=10 * n
        )[1]
    payloads.post(client, headers, spans)
    data = metrics(client, headers, start_date="2025-04-01", end_date="2025-04-01", bucket="day")
    assert data["summary"]["p50_latency_ms"] == 100.0
    assert data["summary"]["p95_latency_ms"] == 190.0
    assert (data["time_series"][0]["p50_latency_ms"], data["time_series"][0]["p95_latency_ms"]) == (
        100.0,
        190.0,
    )
    # By model: the 20 model calls last half their trace, 5 to 100 ms.
    (model,) = data["by_model"]
    assert (model["calls"], model["p50_latency_ms"], model["p95_latency_ms"]) == (20, 50.0, 95.0)


def test_the_by_model_table_counts_each_model_s_calls(client, headers, ids):
    data = metrics(client, headers, start_date="2025-03-01", end_date="2025-03-03", bucket="day")
    by_model = {row["model"]: row for row in data["by_model"]}
    assert [row["model"] for row in data["by_model"]] == [
        "gpt-4o-mini",
        "claude-3-5-haiku",
        "gpt-4o",
    ]
    assert by_model["gpt-4o-mini"] == {
        "model": "gpt-4o-mini",
        "calls": 2,
        "errors": 0,
        "cost": pytest.approx(0.000045 * 2),
        "input_tokens": 200,
        "output_tokens": 100,
        "p50_latency_ms": 50.0,
        "p95_latency_ms": 500.0,
    }
    assert (by_model["gpt-4o"]["calls"], by_model["gpt-4o"]["errors"]) == (1, 1)
    assert by_model["gpt-4o"]["cost"] == pytest.approx(0.0075)
    # The trace outside the range (February) is not counted.
    assert sum(row["calls"] for row in data["by_model"]) == 4


def test_the_hourly_series_fills_empty_hours_with_zeros(client, headers, ids):
    series = metrics(client, headers, start_date="2025-03-01", end_date="2025-03-01")["time_series"]
    assert len(series) == 24
    busy = {p["hour"]: p["requests"] for p in series if p["requests"]}
    assert busy == {10: 1, 11: 1}
    assert series[0]["cost"] == 0.0 and series[0]["avg_latency_ms"] == 0.0


def test_the_default_range_is_the_last_seven_days(client, headers):
    _, spans = payloads.llm_trace(start_ns=time.time_ns() - 3_600 * 10**9)
    payloads.post(client, headers, spans)
    data = metrics(client, headers)
    assert data["summary"]["total_requests"] == 1
    assert len(data["time_series"]) in (168, 169)


def test_an_app_without_traces_has_zero_metrics(client, headers):
    summary = metrics(client, headers, start_date="2025-01-01", end_date="2025-01-02")["summary"]
    assert summary["total_requests"] == 0
    assert summary["avg_latency_ms"] == 0.0
    assert summary["p95_latency_ms"] == summary["p50_latency_ms"] == 0.0
    assert summary["avg_cost_per_request"] == 0.0


@pytest.mark.parametrize(
    "params",
    [
        {"bucket": "week"},
        {"start_date": "soon"},
        {"start_date": "2025-03-03", "end_date": "2025-03-01"},
        {"start_date": "2000-01-01", "end_date": "2025-01-01", "bucket": "hour"},
    ],
)
def test_invalid_metrics_queries_are_a_400(client, headers, params):
    response = client.get("/v1/metrics", params=params, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_metrics_need_metrics_read(admin, client, key_headers):
    app_id = admin.create_app()
    key = admin.create_key(app_id, permissions=["trace.read", "span.read", "session.read"])
    response = client.get("/v1/metrics", headers=key_headers(key))
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "metrics.read"
