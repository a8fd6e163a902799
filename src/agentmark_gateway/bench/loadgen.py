"""Trace ingest load: a small closed-loop generator that knows exactly what was acknowledged.

wrk cuts requests off mid-flight when its time is up, so some spans would be
committed without anyone hearing so; here every connection finishes the request
it has started, and spans are counted as acknowledged only on a 2xx.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from agentmark_gateway.bench.workload import TraceBodies


@dataclass(frozen=True)
class IngestResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    acknowledged_spans: int
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def span_rate(self) -> float:
        return self.acknowledged_spans / self.seconds if self.seconds else 0.0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (what wrk reports too); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


async def _ingest(
    base_url: str, headers: dict[str, str], bodies: TraceBodies, seconds: float, connections: int
) -> IngestResult:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={**headers, "Content-Type": "application/json"},
        limits=limits,
        timeout=60,
    ) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def connection() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                body = bodies.next()
                sent = time.perf_counter()
                try:
                    answer = await client.post("/v1/traces", content=body)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[answer.status_code] += 1

        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return IngestResult(
        requests=sum(statuses.values()),
        seconds=elapsed,
        latencies_ms=latencies,
        statuses=dict(statuses),
        acknowledged_spans=ok * bodies.spans,
        errors=errors,
    )


def ingest(
    base_url: str,
    headers: dict[str, str],
    *,
    seconds: float,
    connections: int,
    bodies: TraceBodies | None = None,
) -> IngestResult:
    """POST OTLP JSON traces for ``seconds``; each request a new trace of 100 spans."""
    return asyncio.run(_ingest(base_url, headers, bodies or TraceBodies(), seconds, connections))
