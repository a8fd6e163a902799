"""Ingest while retention prunes: ``python -m agentmark_gateway.bench.retention``.

Seeds expired spans (default 1,000,000: traces of 100 spans, 40 days old, each
with a score), serves the gateway, and measures ingest with the load of the
bench's (e) row in alternating phases: without pruning, then with, and so on
until every expired span is gone, ending without. Alternating keeps a busy
machine's drift out of the comparison.

The pruning is the gateway's own, in the serving process on its engine:
``retention.prune_step`` transactions with ``retention.rest_after`` between
them, as ``retention.prune_app`` runs them, except that the bench holds it
between its phases (a file says when it may run). Each transaction's time is
kept: the longest is the longest the write lock was held for pruning.

Target (issue 15): the span rate while pruning within 10% of the rate without.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, insert, select, text

from agentmark_gateway import retention
from agentmark_gateway.app import create_app
from agentmark_gateway.bench import loadgen, seed
from agentmark_gateway.bench.servers import Server
from agentmark_gateway.bench.workload import TraceBodies
from agentmark_gateway.cli import http_server
from agentmark_gateway.db.engine import make_engine
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.scores.models import Score
from agentmark_gateway.settings import Settings
from agentmark_gateway.traces.models import Span, Trace

WINDOW_DAYS = 30
AGE_DAYS = 40
SPANS_PER_TRACE = 100
# The serving process starts its pass when this file appears, and writes what
# the pass did, with its start and end (epoch seconds), next to it (.done).
SIGNAL_ENV = "AGENTMARK_BENCH_PRUNE_SIGNAL"
MODULE = "agentmark_gateway.bench.retention"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the serving side -------------------------------------------------------


async def _prune_while_told(gateway: Gateway, signal: Path) -> None:
    """Every app's expired traces, one ``prune_step`` at a time, while ``signal`` exists."""
    total = retention.Pruned()
    steps_ms: list[float] = []
    started = time.time()
    async with gateway.sessionmaker() as session:
        apps = await retention.windows(session, WINDOW_DAYS)
    for app_id, days in apps:
        before_ns = retention.cutoff_ns(days, started)
        while True:
            # Held by another process: a file to poll, not an event to await.
            while not await asyncio.to_thread(signal.exists):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            began = time.perf_counter()
            async with gateway.sessionmaker() as session, session.begin():
                step = await retention.prune_step(session, app_id, before_ns)
            busy = time.perf_counter() - began
            steps_ms.append(busy * 1000)
            if step is None:
                break
            total.add(step)
            await asyncio.sleep(retention.rest_after(busy))
    steps_ms.sort()
    report = {
        "spans": total.spans,
        "traces": total.traces,
        "scores": total.scores,
        "transactions": len(steps_ms),
        "transaction_ms_p50": round(loadgen.percentile(steps_ms, 0.5), 1),
        "transaction_ms_p99": round(loadgen.percentile(steps_ms, 0.99), 1),
        "transaction_ms_max": round(steps_ms[-1], 1) if steps_ms else 0.0,
    }
    await asyncio.to_thread(signal.with_suffix(".done").write_text, json.dumps(report))


def pruning_factory() -> FastAPI:
    """The production app, plus a retention pass that runs only while the bench says so."""
    settings = Settings()
    gateway = Gateway.build(settings)
    start = gateway.start

    async def start_and_wait_for_signal() -> None:
        await start()
        signal = Path(os.environ[SIGNAL_ENV])
        gateway.tasks.append(asyncio.create_task(_prune_while_told(gateway, signal)))

    gateway.start = start_and_wait_for_signal  # type: ignore[method-assign]
    return create_app(settings, gateway=gateway)


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentmark_gateway.bench.retention serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    target = f"{MODULE}:pruning_factory"
    http_server.run(target, Settings(port=args.port), args.workers)


# -- the expired data -------------------------------------------------------


def _span_rows(app_id: str, trace_id: str, start_ns: int, stored: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(SPANS_PER_TRACE):
        begin = start_ns + i * 1_000_000
        rows.append(
            {
                "app_id": app_id,
                "trace_id": trace_id,
                "span_id": f"{i + 1:016x}",
                "parent_span_id": None if i == 0 else f"{1:016x}",
                "name": "agent run" if i == 0 else f"llm call {i}",
                "kind": 1 if i == 0 else 3,
                "start_time_ns": begin,
                "end_time_ns": begin + 800_000,
                "duration_ms": 0.8,
                "status_code": 1,
                # What the ingest workload's spans carry.
                "attributes": {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 120 + i,
                    "gen_ai.usage.output_tokens": 40 + i,
                    "agentmark.session_id": "bench-session",
                    "agentmark.user_id": "bench-user",
                    "agentmark.prompt_name": "greeting",
                    "agentmark.props": json.dumps({"name": f"user {i}"}),
                    "agentmark.output": f"Hello, user {i}! Nice to meet you.",
                },
                "resource_attributes": {"service.name": "agentmark-bench"},
                "events": [],
                "links": [],
                "scope_name": "agentmark",
                "session_id": "bench-session",
                "user_id": "bench-user",
                "tags": [],
                "model": "gpt-4o-mini",
                "input_tokens": 120 + i,
                "output_tokens": 40 + i,
                "cost": 0.0001,
                "prompt_name": "greeting",
                "output": f"Hello, user {i}! Nice to meet you.",
                "received_at": stored,
            }
        )
    return rows


async def _store_expired(url: str, app_id: str, spans: int) -> None:
    engine = make_engine(url)
    now = time.time()
    start_ns = int((now - AGE_DAYS * 86_400) * 1_000_000_000)
    stored = datetime.fromtimestamp(now - AGE_DAYS * 86_400, UTC)
    traces = max(1, spans // SPANS_PER_TRACE)
    run = secrets.token_hex(8)
    try:
        per_commit = 50  # traces: 5,000 spans a transaction
        for first in range(0, traces, per_commit):
            async with engine.begin() as db:
                span_rows: list[dict[str, Any]] = []
                trace_rows: list[dict[str, Any]] = []
                score_rows: list[dict[str, Any]] = []
                for n in range(first, min(traces, first + per_commit)):
                    trace_id = f"{run}{n:016x}"
                    begin = start_ns + n * 1_000_000_000
                    span_rows.extend(_span_rows(app_id, trace_id, begin, stored))
                    trace_rows.append(
                        {
                            "app_id": app_id,
                            "trace_id": trace_id,
                            "root_name": "agent run",
                            "first_name": "agent run",
                            "start_time_ns": begin,
                            "end_time_ns": begin + SPANS_PER_TRACE * 1_000_000,
                            "span_count": SPANS_PER_TRACE,
                            "status_code": 1,
                            "input_tokens": 0,
                            "output_tokens": 0,
                            "cost": 0.0,
                            "model": "gpt-4o-mini",
                            "received_at": stored,
                            "updated_at": stored,
                        }
                    )
                    score_rows.append(
                        {
                            "id": secrets.token_hex(16),
                            "app_id": app_id,
                            "resource_id": trace_id,
                            "name": "accuracy",
                            "score": 0.9,
                            "source": "eval",
                            "created_at": stored,
                        }
                    )
                await db.execute(insert(Span), span_rows)
                await db.execute(insert(Trace), trace_rows)
                await db.execute(insert(Score), score_rows)
            if (first // per_commit) % 40 == 0:
                _say(f"   seeded {(first + per_commit) * SPANS_PER_TRACE:,} expired spans")
        if engine.dialect.name == "postgresql":
            # A database that grew over a year has its statistics (autovacuum keeps
            # them); one loaded a minute ago does not, and its plans would be a guess.
            async with engine.connect() as db:
                await db.execute(text("ANALYZE"))
                await db.commit()
    finally:
        await engine.dispose()


async def _expired_left(url: str, app_id: str) -> int:
    cutoff = retention.cutoff_ns(WINDOW_DAYS, time.time())
    engine = make_engine(url)
    try:
        async with engine.connect() as db:
            query = (
                select(func.count())
                .select_from(Span)
                .where(Span.app_id == app_id, Span.start_time_ns < cutoff)
            )
            return int((await db.execute(query)).scalar_one())
    finally:
        await engine.dispose()


# -- the run ----------------------------------------------------------------


@dataclass
class Phase:
    name: str
    spans_per_second: float
    requests: int
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[int, int]

    def line(self) -> str:
        return (
            f"{self.name:>8}: {self.spans_per_second:>9,.0f} spans/s  "
            f"p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:7.1f} ms  "
            f"requests {self.requests:,}  statuses {self.statuses}  errors {self.errors}"
        )


def _measure(name: str, server: Server, headers: dict[str, str], args: Any) -> Phase:
    result = loadgen.ingest(
        server.base_url,
        headers,
        seconds=args.seconds,
        connections=args.connections,
        bodies=TraceBodies(),
    )
    phase = Phase(
        name=name,
        spans_per_second=result.span_rate,
        requests=result.requests,
        p50_ms=loadgen.percentile(result.latencies_ms, 0.50),
        p99_ms=loadgen.percentile(result.latencies_ms, 0.99),
        errors=result.errors,
        statuses=result.statuses,
    )
    _say(phase.line())
    return phase


@contextmanager
def _database(kind: str, workdir: Path, admin_url: str) -> Iterator[str]:
    if kind == "postgresql":
        with seed.postgres_database(admin_url) as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'gateway.db'}"


def bench(args: Any) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="agw-retention-"))
    pepper = secrets.token_urlsafe(32)
    with _database(args.database, workdir, args.postgres_url) as url:
        seeded = seed.prepare(url, pepper.encode())
        _say(f"-- seeding {args.spans:,} expired spans ({args.database})")
        began = time.perf_counter()
        asyncio.run(_store_expired(url, seeded.app_id, args.spans))
        _say(f"   seeded in {time.perf_counter() - began:.0f} s")
        signal = workdir / "prune.signal"
        server = Server(
            name="gateway-pruning",
            command=[sys.executable, "-m", MODULE, "serve"],
            env={
                "AGENTMARK_DATA_DIR": str(workdir / "data"),
                "AGENTMARK_DATABASE_URL": url,
                "AGENTMARK_KEY_PEPPER": pepper,
                SIGNAL_ENV: str(signal),
            },
            log=workdir / "server.log",
        )
        headers = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
        server.start()
        done = signal.with_suffix(".done")
        phases: list[Phase] = []
        try:
            _say("-- warming up")
            loadgen.ingest(server.base_url, headers, seconds=args.warmup, connections=2)
            phases.append(_measure("idle", server, headers, args))
            while not done.exists():
                if args.max_rounds and len(phases) > 2 * args.max_rounds:
                    _say(f"   stopping after {args.max_rounds} rounds; the pass is not done")
                    break
                signal.touch()
                phases.append(_measure("pruning", server, headers, args))
                signal.unlink()
                if done.exists():
                    phases[-1].name = "pruning (ended in this phase)"
                phases.append(_measure("idle", server, headers, args))
            left = asyncio.run(_expired_left(url, seeded.app_id))
            pruned = json.loads(done.read_text()) if done.exists() else None
        finally:
            server.stop()
    # Whole phases only: the last pruning one may have ended early.
    pruning = [p.spans_per_second for p in phases if p.name == "pruning"]
    idle = [p.spans_per_second for p in phases if p.name == "idle"]
    ratio = statistics.mean(pruning) / statistics.mean(idle) if pruning and idle else 0.0
    summary = {
        "database": args.database,
        "expired_spans": args.spans,
        "seconds_per_phase": args.seconds,
        "connections": args.connections,
        "phases": [vars(p) for p in phases],
        "pruned": pruned,
        "expired_spans_left": left,
        "ratio_while_pruning": round(ratio, 3),
    }
    _say(
        f"== {args.database}: while pruning {ratio:.1%} of the ingest rate without "
        f"(mean of {len(pruning)} whole phases against {len(idle)}); expired spans left: {left:,}"
    )
    if pruned:
        _say(
            f"   the pass deleted {pruned['spans']:,} spans in {pruned['transactions']:,} "
            f"transactions, the longest {pruned['transaction_ms_max']:.0f} ms "
            f"(p99 {pruned['transaction_ms_p99']:.0f} ms)"
        )
    return summary


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m agentmark_gateway.bench.retention")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=seed.DEFAULT_PG_URL)
    parser.add_argument("--spans", type=int, default=1_000_000, help="expired spans to seed")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8, help="concurrent trace posts")
    parser.add_argument(
        "--max-rounds", type=int, default=0, help="stop after this many pruning phases (0: none)"
    )
    args = parser.parse_args(argv)
    print(json.dumps(bench(args), indent=2))


if __name__ == "__main__":
    main()
