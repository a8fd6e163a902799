"""The in-process ceiling of ingest: (e)'s batches decoded and stored without HTTP.

What one process reaches on the work no server can skip: each body of the same
kind (e) posts is decoded as OTLP JSON (``traces/otlp.py``), its columns derived
and its spans stored with their roll-ups in one transaction of its own
(``traces/ingest.py``), one batch after the other in a loop. No HTTP, no key
check, no queue: (e) as a share of this says how much of a worker the server
around ingest takes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from agentmark_gateway.bench.workload import TraceBodies
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.pricing import price_table
from agentmark_gateway.traces import ingest, otlp


@dataclass(frozen=True)
class Ceiling:
    batches: int
    spans: int
    seconds: float
    cpu_seconds: float  # this process, every thread (the SQLite driver's included)

    @property
    def rate(self) -> float:
        return self.batches / self.seconds if self.seconds else 0.0

    @property
    def span_rate(self) -> float:
        return self.spans / self.seconds if self.seconds else 0.0


async def _measure(url: str, app_id: str, seconds: float, warmup: float) -> Ceiling:
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    bodies = TraceBodies()
    prices = price_table()

    async def store_for(duration: float) -> tuple[int, int]:
        batches = spans = 0
        until = time.perf_counter() + duration
        while time.perf_counter() < until:
            decoded = otlp.decode(bodies.next(), otlp.Encoding.JSON)
            async with sessionmaker() as session:
                spans += await ingest.store_spans(
                    session, app_id=app_id, spans=decoded, prices=prices
                )
            batches += 1
        return batches, spans

    try:
        await store_for(warmup)
        started, cpu = time.perf_counter(), time.process_time()
        batches, spans = await store_for(seconds)
        return Ceiling(batches, spans, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await engine.dispose()


def measure(url: str, app_id: str, *, seconds: float, warmup: float) -> Ceiling:
    """Stores (e)'s batches into ``url`` (which has the app ``app_id``) for ``seconds``."""
    return asyncio.run(_measure(url, app_id, seconds, warmup))
