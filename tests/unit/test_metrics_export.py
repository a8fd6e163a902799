"""The operator's metrics (observability/metrics.py): counted in plain numbers,
handed to prometheus-client by flushes, summed over workers in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentmark_gateway.observability import metrics
from agentmark_gateway.observability.metrics import Distribution, Exporter, RequestStats
from agentmark_gateway.settings import Settings


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def test_a_distribution_counts_a_value_on_a_bound_into_that_bound():
    found = Distribution((0.1, 1.0))
    for value in (0.1, 0.5, 1.0, 3.0):
        found.observe(value)
    assert found.counts == [1, 2, 1]
    assert found.total == pytest.approx(4.6)


def test_flushes_add_only_what_is_new():
    stats = RequestStats()
    exporter = Exporter(stats)
    stats.observe("GET", "/v1/templates", 200, 0.0004)
    stats.observe("GET", "/v1/templates", 200, 0.003)
    stats.refused("/v1/templates", 429, "rate_limited")
    exporter.flush()
    exporter.flush()
    stats.observe("GET", "/v1/templates", 200, 0.003)
    stats.refused("/v1/templates", 429, "rate_limited")
    found = samples(exporter.render().decode())

    route = {"method": "GET", "route": "/v1/templates", "status": "200"}
    name = "agentmark_http_request_duration_seconds"
    assert found[(f"{name}_count", _labels(**route))] == 3
    assert found[(f"{name}_bucket", _labels(**route, le="0.0005"))] == 1
    assert found[(f"{name}_bucket", _labels(**route, le="0.005"))] == 3
    assert found[(f"{name}_sum", _labels(**route))] == pytest.approx(0.0064)
    refusal = _labels(route="/v1/templates", status="429", code="rate_limited")
    assert found[("agentmark_http_refusals_total", refusal)] == 2
    assert found[("agentmark_rate_limit_refusals_total", _labels(route="/v1/templates"))] == 2


def test_counts_fed_by_other_modules_are_exported():
    exporter = Exporter(RequestStats())
    before = samples(exporter.render().decode())
    metrics.KEY_CACHE.record(True)
    metrics.KEY_CACHE.record(True)
    metrics.KEY_CACHE.record(False)
    metrics.SPANS_INGESTED.add(7)
    metrics.WRITE_WAIT.observe(0.02)
    after = samples(exporter.render().decode())

    def grew(name: str, **labels: str) -> float:
        key = (name, _labels(**labels))
        return after[key] - before[key]

    assert grew("agentmark_key_cache_lookups_total", result="hit") == 2
    assert grew("agentmark_key_cache_lookups_total", result="miss") == 1
    assert grew("agentmark_spans_ingested_total") == 7
    assert grew("agentmark_write_queue_wait_seconds_bucket", le="0.025") == 1


def test_pool_and_queue_gauges_are_read_at_the_scrape():
    pool = SimpleNamespace(checkedout=lambda: 3, size=lambda: 10)
    writes = SimpleNamespace(waiting=4, last_wait_seconds=0.25)
    gateway = SimpleNamespace(engine=SimpleNamespace(pool=pool), writes=writes)
    found = samples(Exporter(RequestStats(), gateway).render().decode())  # type: ignore[arg-type]
    assert found[("agentmark_db_pool_checked_out", frozenset())] == 3
    assert found[("agentmark_db_pool_size", frozenset())] == 10
    assert found[("agentmark_write_queue_depth", frozenset())] == 4
    assert found[("agentmark_write_queue_last_wait_seconds", frozenset())] == 0.25


WORKER = textwrap.dedent(
    """
    import os, sys
    from types import SimpleNamespace
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from agentmark_gateway.observability.metrics import SPANS_INGESTED, Exporter, RequestStats

    stats = RequestStats()
    pool = SimpleNamespace(checkedout=lambda: 2, size=lambda: 5)
    gateway = SimpleNamespace(engine=SimpleNamespace(pool=pool), writes=None)
    exporter = Exporter(stats, gateway)
    for _ in range(3):
        stats.observe("GET", "/v1/templates", 200, 0.002)
    SPANS_INGESTED.add(5)
    exporter.flush()
    exporter.flush()
    stats.observe("GET", "/v1/templates", 200, 0.2)
    if sys.argv[2] == "stops":
        exporter.stop()  # as a worker's lifespan ends: last flush, live gauges dropped
    else:
        exporter.flush()
    """
)

READER = textwrap.dedent(
    """
    import os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from agentmark_gateway.observability.metrics import Exporter, RequestStats

    sys.stdout.write(Exporter(RequestStats()).render().decode())
    """
)


def test_several_workers_are_summed_by_the_one_that_takes_the_scrape(tmp_path):
    def run(script: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    run(WORKER, "stops")
    run(WORKER, "runs")
    found = samples(run(READER))

    route = _labels(method="GET", route="/v1/templates", status="200")
    name = "agentmark_http_request_duration_seconds"
    assert found[(f"{name}_count", route)] == 8
    assert found[(f"{name}_bucket", route | {("le", "0.0025")})] == 6
    assert found[("agentmark_spans_ingested_total", frozenset())] == 10
    # A gauge counts the live workers only: the one that stopped is gone.
    assert found[("agentmark_db_pool_checked_out", frozenset())] == 2


@pytest.fixture
def no_multiprocess_dir(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROCESS_VARIABLE, raising=False)
    yield
    os.environ.pop(metrics.MULTIPROCESS_VARIABLE, None)


def _settings(tmp_path: Path, token: str | None) -> Settings:
    return Settings(data_dir=tmp_path, metrics_token=token)


def test_several_workers_with_metrics_get_an_empty_shared_folder(tmp_path, no_multiprocess_dir):
    metrics.prepare_workers(_settings(tmp_path, "t" * 16), 2)
    folder = Path(os.environ[metrics.MULTIPROCESS_VARIABLE])
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_named_folder_is_emptied_of_the_last_run(tmp_path, no_multiprocess_dir, monkeypatch):
    named = tmp_path / "prom"
    named.mkdir()
    (named / "counter_123.db").write_bytes(b"old")
    (named / "README").write_text("kept")
    monkeypatch.setenv(metrics.MULTIPROCESS_VARIABLE, str(named))
    metrics.prepare_workers(_settings(tmp_path, "t" * 16), 4)
    assert sorted(p.name for p in named.iterdir()) == ["README"]


@pytest.mark.parametrize(("token", "workers"), [(None, 4), ("t" * 16, 1)])
def test_one_worker_or_no_metrics_needs_no_folder(tmp_path, no_multiprocess_dir, token, workers):
    metrics.prepare_workers(_settings(tmp_path, token), workers)
    assert metrics.MULTIPROCESS_VARIABLE not in os.environ


def test_a_short_metrics_token_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 16"):
        _settings(tmp_path, "short")


def test_the_grafana_dashboard_has_a_panel_for_every_series():
    import json

    dashboard = json.loads(
        (Path(__file__).parents[2] / "deploy" / "grafana" / "agentmark-gateway.json").read_text()
    )
    queries = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    families = text_string_to_metric_families(Exporter(RequestStats()).render().decode())
    names = {family.name for family in families}
    assert len(names) == 10
    for name in names:
        assert name in queries, name
