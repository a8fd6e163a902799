"""The dashboard's data pages on a big app: seed PostgreSQL, then time the pages.

    python -m agentmark_gateway.bench.dashboard seed [--url URL]
    python -m agentmark_gateway.bench.dashboard measure [--url URL]
    python -m agentmark_gateway.bench.dashboard run        # a fresh database, seed, measure, drop

``seed`` makes one app with 100,000 traces: 99,999 of 10 spans and one of 5,000
(1,004,990 spans), spread over the last 30 days across 20 names, 1,000 users and
20,000 sessions, 5% failed, a tenth scored, sent by three keys (90%, 9%, 1%).
The rows go in with COPY, as the ingest would have stored them (spans plus their
trace roll-ups); sending a million spans through the API would time the ingest,
which has its own bench.

``measure`` serves the gateway on a free port and asks for each page as a
signed-in member does, over HTTP: the traces list and each of its filters, an
older page, the poll of an open list, the 5,000-span trace (as it opens, the next
rows its waterfall loads, and every row at once), sessions. It prints one row per page with the
median and p95 of ``--repeat`` requests after one warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import uvicorn

from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.apps import service as apps
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.auth import service as auth
from agentmark_gateway.bench.seed import DEFAULT_PG_URL, postgres_database
from agentmark_gateway.db import migrate
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.traces.times import to_ns
from agentmark_gateway.users import service as users

TRACES = 100_000
SPANS_PER_TRACE = 10
BIG_TRACE_SPANS = 5_000
NAMES = [f"flow-{n:02d}" for n in range(20)]
USERS = 1_000
SESSIONS = 20_000
DAYS = 30
BATCH = 5_000  # traces per COPY
EMAIL = "dashboard-bench@example.com"
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku")
# The keys that sent the traces, and each one's share of them.
KEYS = (("production-sdk", 0.90), ("batch-jobs", 0.09), ("old-laptop", 0.01))

SPAN_COLUMNS = (
    "app_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time_ns",
    "end_time_ns",
    "duration_ms",
    "status_code",
    "status_message",
    "attributes",
    "resource_attributes",
    "events",
    "links",
    "scope_name",
    "trace_name",
    "session_id",
    "session_name",
    "user_id",
    "tags",
    "span_type",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "dataset_run_id",
    "prompt_name",
    "input",
    "output",
    "received_at",
)
TRACE_COLUMNS = (
    "app_id",
    "trace_id",
    "trace_name",
    "root_name",
    "first_name",
    "start_time_ns",
    "end_time_ns",
    "span_count",
    "status_code",
    "input_tokens",
    "output_tokens",
    "cost",
    "model",
    "user_id",
    "session_id",
    "session_name",
    "received_at",
    "updated_at",
    "api_key_id",
)
SCORE_COLUMNS = ("id", "app_id", "resource_id", "name", "score", "source", "created_at")


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgres://", 1).replace(
        "postgresql://", "postgres://", 1
    )


def _trace_rows(
    app_id: str, number: int, spans: int, start_ns: int, rng: random.Random, key_id: str
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    """One trace as the ingest stores it: its spans (a root, then a chain of steps
    with model calls) and its roll-up row."""
    trace_id = secrets.token_hex(16)
    name = NAMES[number % len(NAMES)]
    user = f"user-{rng.randrange(USERS)}"
    session = f"session-{number % SESSIONS}"
    failed = rng.random() < 0.05
    now = utcnow()
    root_id = secrets.token_hex(8)
    step_ns = 40_000_000  # 40 ms a step
    end_ns = start_ns + step_ns * (spans + 1)
    root_attrs = json.dumps(
        {
            "agentmark.trace_name": name,
            "agentmark.user_id": user,
            "agentmark.session_id": session,
        }
    )
    resource = json.dumps({"service.name": "bench-app"})
    rows: list[tuple[Any, ...]] = [
        (
            app_id, trace_id, root_id, None, name, 1, start_ns, end_ns,
            (end_ns - start_ns) / 1e6, 2 if failed else 1, "failed" if failed else None,
            root_attrs, resource, "[]", "[]", "agentmark", name, session, None, user, "[]",
            "agent", None, 0, 0, None, None, None, '{"question": "hi"}', "done", now,
        )
    ]  # fmt: skip
    input_tokens = output_tokens = 0
    cost = 0.0
    model = MODELS[number % len(MODELS)]
    parents = [root_id]
    for step in range(1, spans):
        span_id = secrets.token_hex(8)
        llm = step % 2 == 1
        begin = start_ns + step_ns * step
        finish = begin + step_ns // 2
        tokens_in, tokens_out = (120, 30) if llm else (0, 0)
        span_cost = 0.00005 if llm else None
        input_tokens += tokens_in
        output_tokens += tokens_out
        cost += span_cost or 0.0
        parent = parents[min(len(parents) - 1, rng.randrange(3))]
        rows.append(
            (
                app_id, trace_id, span_id, parent, "chat" if llm else f"step-{step}", 0,
                begin, finish, (finish - begin) / 1e6, 1, None,
                json.dumps({"gen_ai.request.model": model} if llm else {"step": step}),
                resource, "[]", "[]", "agentmark", None, None, None, None, "[]",
                "llm" if llm else "tool", model if llm else None, tokens_in, tokens_out,
                span_cost, None, None,
                '[{"role": "user", "content": "hi"}]' if llm else None,
                "hello" if llm else None, now,
            )
        )  # fmt: skip
        if not llm:
            parents.append(span_id)
    roll_up = (
        app_id, trace_id, name, name, name, start_ns, end_ns, spans, 2 if failed else 1,
        input_tokens, output_tokens, cost, model, user, session, None, now, now, key_id,
    )  # fmt: skip
    return rows, roll_up


async def _make_app(url: str) -> tuple[str, list[str]]:
    """The bench app and the ids of its keys (``KEYS``' order)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            await users.create_user(
                session, email=EMAIL, role="read", password=secrets.token_urlsafe(16)
            )
            await session.commit()
            app = await apps.create_app(session, actor=CLI_ACTOR, name="dashboard-bench")
            key_ids = []
            for name, _share in KEYS:
                created = await keys.create_key(
                    session,
                    actor=CLI_ACTOR,
                    pepper=secrets.token_bytes(32),  # the values are never used
                    app_id=app.id,
                    name=name,
                    role="sdk",
                    permissions=None,
                )
                key_ids.append(created.key.id)
            return app.id, key_ids
    finally:
        await engine.dispose()


async def _seed(url: str) -> tuple[str, str]:
    app_id, key_ids = await _make_app(url)
    shares = [share for _name, share in KEYS]
    rng = random.Random(14)  # noqa: S311 - test data, the same on every run
    now_ns = to_ns(utcnow())
    window = DAYS * 86_400 * 1_000_000_000
    big_trace = ""
    connection = await asyncpg.connect(_asyncpg_url(url))
    try:
        for first in range(0, TRACES, BATCH):
            spans: list[tuple[Any, ...]] = []
            traces: list[tuple[Any, ...]] = []
            scores: list[tuple[Any, ...]] = []
            for number in range(first, min(first + BATCH, TRACES)):
                count = BIG_TRACE_SPANS if number == TRACES // 2 else SPANS_PER_TRACE
                start = now_ns - rng.randrange(window)
                key_id = rng.choices(key_ids, weights=shares)[0]
                rows, roll_up = _trace_rows(app_id, number, count, start, rng, key_id)
                spans += rows
                traces.append(roll_up)
                if count == BIG_TRACE_SPANS:
                    big_trace = roll_up[1]
                if number % 10 == 0:
                    scores.append(
                        (
                            secrets.token_hex(16), app_id, roll_up[1], "accuracy",
                            rng.random(), "api", utcnow(),
                        )
                    )  # fmt: skip
            await connection.copy_records_to_table("spans", records=spans, columns=SPAN_COLUMNS)
            await connection.copy_records_to_table("traces", records=traces, columns=TRACE_COLUMNS)
            await connection.copy_records_to_table("scores", records=scores, columns=SCORE_COLUMNS)
            print(f"  {first + len(traces):>7,} traces", flush=True)
        await connection.execute("ANALYZE spans; ANALYZE traces; ANALYZE scores")
    finally:
        await connection.close()
    return app_id, big_trace


def seed(url: str) -> tuple[str, str]:
    """Migrate ``url`` and fill it; returns the app id and the 5,000-span trace's id."""
    migrate.upgrade(url)
    started = time.monotonic()
    app_id, big_trace = asyncio.run(_seed(url))
    print(f"seeded app {app_id} in {time.monotonic() - started:.0f} s; big trace {big_trace}")
    return app_id, big_trace


async def _facts(url: str) -> tuple[str, str, str, str, dict[str, str]]:
    """The bench app, its biggest trace, a session and a user that have traces, and
    its keys' ids by name."""
    connection = await asyncpg.connect(_asyncpg_url(url))
    try:
        app_id = await connection.fetchval("SELECT id FROM apps WHERE name = 'dashboard-bench'")
        big = await connection.fetchval(
            "SELECT trace_id FROM traces WHERE app_id = $1 ORDER BY span_count DESC LIMIT 1",
            app_id,
        )
        row = await connection.fetchrow(
            "SELECT session_id, user_id FROM traces WHERE app_id = $1 "
            "ORDER BY start_time_ns DESC LIMIT 1",
            app_id,
        )
        named = await connection.fetch("SELECT name, id FROM api_keys WHERE app_id = $1", app_id)
        key_ids = {str(key["name"]): str(key["id"]) for key in named}
        return str(app_id), str(big), str(row["session_id"]), str(row["user_id"]), key_ids
    finally:
        await connection.close()


async def _session_token(url: str) -> str:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await users.get_by_email(session, EMAIL)
            assert user is not None, "seed first"
            token = await auth.start_session(session, user=user, ttl_seconds=3600)
            await session.commit()
            return token
    finally:
        await engine.dispose()


@contextmanager
def _serving(url: str) -> Iterator[str]:
    from agentmark_gateway.app import create_app
    from agentmark_gateway.settings import Settings

    port = _free_port()
    settings = Settings(database_url=url, key_pepper="dashboard-bench")
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(
    client: httpx.Client, path: str, repeat: int, ok: tuple[int, ...] = (200,)
) -> tuple[float, float, float, int]:
    """Median and p95 wall milliseconds of ``repeat`` requests after one warm-up, the
    median CPU milliseconds this process spent on each (the gateway's work and the
    client's, not PostgreSQL's), and the answer's size.

    On a busy machine the wall time is mostly waiting for a core; the CPU time is
    what the request costs where it has one to itself."""
    walls, cpus = [], []
    size = 0
    for _ in range(repeat + 1):
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        if response.status_code not in ok:
            raise RuntimeError(f"{path}: {response.status_code}")
        size = len(response.content)
    walls, cpus = sorted(walls[1:]), cpus[1:]
    p95 = walls[round(0.95 * (len(walls) - 1))]
    return statistics.median(walls), p95, statistics.median(cpus), size


def measure(url: str, repeat: int) -> None:
    app_id, big, session_id, user_id, key_ids = asyncio.run(_facts(url))
    common, rare = KEYS[0][0], KEYS[-1][0]
    token = asyncio.run(_session_token(url))
    base = f"/apps/{app_id}"
    pages = [
        ("traces, newest first", f"{base}/traces"),
        ("filter: last 24 hours", f"{base}/traces?range=24h"),
        ("filter: last hour", f"{base}/traces?range=1h"),
        ("filter: name", f"{base}/traces?name={NAMES[7]}"),
        ("filter: name no trace has", f"{base}/traces?name=no-such-flow"),
        ("filter: status ERROR", f"{base}/traces?status=ERROR"),
        ("filter: status UNSET (no trace)", f"{base}/traces?status=UNSET"),
        ("filter: user", f"{base}/traces?user={user_id}"),
        ("filter: session", f"{base}/traces?session={session_id}"),
        ("filter: scored", f"{base}/traces?scored=yes"),
        ("filter: not scored", f"{base}/traces?scored=no"),
        ("filter: name + status + 7 days", f"{base}/traces?name={NAMES[3]}&status=ERROR&range=7d"),
        (f"filter: key ({common}, 90%)", f"{base}/traces?key={key_ids[common]}"),
        (f"filter: key ({rare}, 1%)", f"{base}/traces?key={key_ids[rare]}"),
        ("poll (unchanged: 204)", ""),
        ("older page (keyset)", ""),
        ("trace of 5,000 spans", f"{base}/traces/{big}"),
        ("its next 500 waterfall rows", f"{base}/traces/{big}/waterfall?from=500"),
        ("all 5,000 rows at once (no script)", f"{base}/traces/{big}?all=1"),
        ("sessions", f"{base}/sessions"),
        ("one session", f"{base}/sessions/{session_id}"),
    ]
    with (
        _serving(url) as server,
        httpx.Client(base_url=server, cookies={"agentmark_session": token}, timeout=60) as client,
    ):
        first = client.get(f"{base}/traces").text
        poll = re.search(r'hx-get="([^"]+/traces/rows[^"]*)"', first)
        older = re.search(r'href="([^"]+before=[^"]+)">Older', first)
        assert poll and older, "the list page has no poll or no older page"
        print("| page | median ms | p95 ms | CPU ms | bytes |\n|---|---:|---:|---:|---:|")
        for label, path in pages:
            if label.startswith("poll"):
                path = poll.group(1).replace("&amp;", "&")
                client.headers["HX-Request"] = "true"
                median, p95, cpu, size = _timed(client, path, repeat, ok=(200, 204))
                del client.headers["HX-Request"]
            else:
                if label.startswith("older"):
                    path = older.group(1).replace("&amp;", "&")
                median, p95, cpu, size = _timed(client, path, repeat)
            print(f"| {label} | {median:.0f} | {p95:.0f} | {cpu:.0f} | {size:,} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentmark_gateway.bench.dashboard")
    parser.add_argument("command", choices=("seed", "measure", "run"))
    parser.add_argument("--url", help="PostgreSQL database (seed, measure)")
    parser.add_argument("--admin-url", default=DEFAULT_PG_URL, help="server for run's database")
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args(argv)
    if options.command == "run":
        with postgres_database(options.admin_url) as url:
            seed(url)
            measure(url, options.repeat)
        return
    if not options.url:
        parser.error("--url is needed")
    if options.command == "seed":
        seed(options.url)
    else:
        measure(options.url, options.repeat)


if __name__ == "__main__":
    main()
