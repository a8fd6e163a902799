"""The operator's metrics, in Prometheus' text format (``GET /metrics``).

Counting is kept off the hot path's budget: a request adds to plain Python
numbers in this process (``RequestStats``, ``Count``, ``Distribution``; no lock,
no label lookup: the loop runs one request at a time), and ``Exporter.flush``
hands what was added since the last flush to prometheus-client's metrics. A
scrape flushes first, so one process always answers with exact numbers.

Several workers (``serve --workers N``) use prometheus-client's multiprocess
mode: ``prepare_workers`` gives them one shared folder (``PROMETHEUS_MULTIPROC_DIR``)
before they start; each worker flushes into its own files there every
``FLUSH_SECONDS`` (and as it stops), and the worker that takes a scrape reads
them all. Counters and histograms add up over every worker that ever ran;
gauges add up over the live ones.

Things other modules count live here, one object each, so that those modules
need one line and no app: ``KEY_CACHE`` (the key check), ``SPANS_INGESTED``
(ingest) and ``WRITE_WAIT`` (the group-commit writer).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentmark_gateway.settings import Settings

if TYPE_CHECKING:
    from agentmark_gateway.runtime import Gateway

__all__ = [
    "FLUSH_SECONDS",
    "KEY_CACHE",
    "LATENCY_BUCKETS",
    "MULTIPROCESS_VARIABLE",
    "SPANS_INGESTED",
    "WRITE_WAIT",
    "Count",
    "Distribution",
    "Exporter",
    "HitCount",
    "RequestStats",
    "prepare_workers",
]

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How often a worker of several writes its numbers where a scrape reads them.
FLUSH_SECONDS = 1.0

# Seconds; from a cached template (well under 1 ms) to a large ingest.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Seconds a write waits in the group-commit queue before its transaction starts.
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Distribution:
    """Observations counted into fixed buckets (``counts[i]``: values <= ``bounds[i]``
    and above the bound before; the last one past every bound) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class Count:
    """A number that only grows."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def add(self, amount: int = 1) -> None:
        self.value += amount


class HitCount:
    """Lookups of a cache: ``record(hit)`` once per lookup."""

    __slots__ = ("hits", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def record(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1


# Fed by other modules (one line each); per process, like the caches they count.
KEY_CACHE = HitCount()
SPANS_INGESTED = Count()
WRITE_WAIT = Distribution(WAIT_BUCKETS)


class RequestStats:
    """One app's answered requests: latency by method, route template and status;
    refusals (401, 403, 429) by route and error code."""

    __slots__ = ("durations", "refusals")

    def __init__(self) -> None:
        self.durations: dict[tuple[str, str, int], Distribution] = {}
        self.refusals: dict[tuple[str, int, str], int] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        found = self.durations.get(key)
        if found is None:
            found = self.durations[key] = Distribution(LATENCY_BUCKETS)
        found.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        found.total += seconds

    def refused(self, route: str, status: int, code: str) -> None:
        key = (route, status, code)
        self.refusals[key] = self.refusals.get(key, 0) + 1


def multiprocess_dir() -> str | None:
    """The shared folder when this process records for a multiprocess scrape, else None.

    prometheus-client picks its storage when it is first imported: the folder
    counts only if it was set by then (``prepare_workers`` sets it before any
    worker starts).
    """
    from prometheus_client import values

    path = os.environ.get(MULTIPROCESS_VARIABLE)
    if path and getattr(values.ValueClass, "_multiprocess", False):
        return path
    return None


class Exporter:
    """prometheus-client's side: the metric families, fed by ``flush``, rendered by ``render``."""

    def __init__(self, stats: RequestStats, gateway: Gateway | None = None) -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client.multiprocess import MultiProcessCollector

        # The _created series double every counter for what rate() does not need.
        prometheus_client.disable_created_metrics()
        self.stats = stats
        self.gateway = gateway
        self.directory = multiprocess_dir()
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values go to this worker's files, and the scrape
        # reads every worker's files; a registry of its own would count one worker.
        own = None if self.directory else self.registry
        if self.directory:
            MultiProcessCollector(self.registry, path=self.directory)
        self.requests = Histogram(
            "agentmark_http_request_duration_seconds",
            "Requests answered, by method, route template and status, with the time "
            "the app took (from the request's headers to the answer's last byte).",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.refusals = Counter(
            "agentmark_http_refusals",
            "Requests refused with 401, 403 or 429, by route template, status and error code.",
            ["route", "status", "code"],
            registry=own,
        )
        self.rate_limited = Counter(
            "agentmark_rate_limit_refusals",
            "Requests refused by the rate limiter (429), by route template.",
            ["route"],
            registry=own,
        )
        self.key_cache = Counter(
            "agentmark_key_cache_lookups",
            "Key checks answered from this process's verified-key cache (hit) or not (miss).",
            ["result"],
            registry=own,
        )
        self.spans = Counter("agentmark_spans_ingested", "Spans received and stored.", registry=own)
        self.write_wait = Histogram(
            "agentmark_write_queue_wait_seconds",
            "How long a write (spans, scores) waited in the group-commit queue.",
            buckets=WAIT_BUCKETS,
            registry=own,
        )
        self.write_queue = Gauge(
            "agentmark_write_queue_depth",
            "Write requests waiting for the group-commit writer.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.write_last_wait = Gauge(
            "agentmark_write_queue_last_wait_seconds",
            "How long the oldest request of the last group commit waited.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.pool_checked_out = Gauge(
            "agentmark_db_pool_checked_out",
            "Database connections in use.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "agentmark_db_pool_size",
            "Database connections the pools keep (in use or idle; overflow not included).",
            registry=own,
            multiprocess_mode="livesum",
        )
        # What each series had at the last flush: a flush sends the difference.
        self._sent: dict[Any, Any] = {}

    def flush(self) -> None:
        """Hands everything counted since the last flush to prometheus-client."""
        for (method, route, status), found in list(self.stats.durations.items()):
            series = ("requests", method, route, status)
            _add_distribution(
                self.requests.labels(method, route, str(status)), found, self._sent.get(series)
            )
            self._sent[series] = (list(found.counts), found.total)
        for (route, status, code), count in list(self.stats.refusals.items()):
            refusal = ("refusals", route, status, code)
            self._add(self.refusals.labels(route, str(status), code), refusal, count)
            if status == 429:
                self._add(self.rate_limited.labels(route), ("rate_limited", route), count)
        self._add(self.key_cache.labels("hit"), "key_cache_hits", KEY_CACHE.hits)
        self._add(self.key_cache.labels("miss"), "key_cache_misses", KEY_CACHE.misses)
        self._add(self.spans, "spans", SPANS_INGESTED.value)
        _add_distribution(self.write_wait, WRITE_WAIT, self._sent.get("write_wait"))
        self._sent["write_wait"] = (list(WRITE_WAIT.counts), WRITE_WAIT.total)
        self._sample_gauges()

    def _add(self, child: Any, key: Any, total: int) -> None:
        delta = total - self._sent.get(key, 0)
        if delta:
            child.inc(delta)
        self._sent[key] = total

    def _sample_gauges(self) -> None:
        if self.gateway is None:
            return
        pool = self.gateway.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if callable(checked_out):
            self.pool_checked_out.set(checked_out())
        if callable(size):
            self.pool_size.set(size())
        writes = getattr(self.gateway, "writes", None)
        if writes is not None:
            self.write_queue.set(writes.waiting)
            self.write_last_wait.set(writes.last_wait_seconds)

    def render(self) -> bytes:
        """The scrape's body (``CONTENT_TYPE``), after a flush."""
        from prometheus_client import generate_latest

        self.flush()
        return generate_latest(self.registry)

    def stop(self) -> None:
        """A worker of several that stops: its last numbers written, its gauges dropped."""
        if self.directory is None:
            return
        from prometheus_client import multiprocess

        self.flush()
        multiprocess.mark_process_dead(os.getpid(), self.directory)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _add_distribution(
    child: Any, found: Distribution, sent: tuple[list[int], float] | None
) -> None:
    """Adds what ``found`` gained since ``sent`` to a prometheus-client histogram child.

    prometheus-client has no call that adds a batch of observations, so this writes
    its per-bucket values (non-cumulative, as ``observe`` keeps them) directly.
    """
    before_counts, before_total = sent if sent is not None else (None, 0.0)
    for index, count in enumerate(found.counts):
        delta = count - (before_counts[index] if before_counts else 0)
        if delta:
            child._buckets[index].inc(delta)
    if found.total != before_total:
        child._sum.inc(found.total - before_total)


def prepare_workers(settings: Settings, workers: int) -> None:
    """Before a server starts ``workers`` processes: with metrics on and more than one
    worker, an empty shared folder in ``PROMETHEUS_MULTIPROC_DIR`` for them to inherit.

    A folder the operator named is emptied of the last run's files; otherwise a
    private temporary one is made and removed when this process exits. Counters
    start from zero with each start of the server, which Prometheus' ``rate()``
    and ``increase()`` expect.
    """
    if settings.metrics_token is None or workers < 2:
        return
    named = os.environ.get(MULTIPROCESS_VARIABLE)
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return
    made = tempfile.mkdtemp(prefix="agentmark-metrics-")
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    os.environ[MULTIPROCESS_VARIABLE] = made
