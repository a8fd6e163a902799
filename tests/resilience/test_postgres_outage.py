"""PostgreSQL stopped in the middle of ingest: 503 with Retry-After, nothing
acknowledged lost, no batch half-written, and recovery without a restart. And
PostgreSQL frozen (connections open, nothing answered): 503 within the
statement timeout, not a request held forever.

The cluster is the test's own (``private_postgres``); the shared server on 5432
keeps serving the other tests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import pytest

from agentmark_gateway.db import migrate
from tests.resilience.cluster import PrivatePostgres
from tests.resilience.gateways import Admin, add_owner, gateways, key_headers
from tests.resilience.traffic import (
    SPANS_PER_BATCH,
    Outcome,
    batch,
    half_written,
    new_marker,
    stored_per_batch_postgres,
)

pytestmark = pytest.mark.slow

SENDERS = 4
BEFORE_SECONDS = 2.0
OUTAGE_SECONDS = 4.0
# A request must be answered (200 or 503) within this long, outage or not.
ANSWER_WITHIN_SECONDS = 5.0
RECOVERY_DEADLINE_SECONDS = 20.0


async def _send_until(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    outcomes: list[Outcome],
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        marker = new_marker()
        started = time.monotonic()
        try:
            response = await client.post("/v1/traces", content=batch(marker), headers=headers)
        except httpx.HTTPError as exc:
            outcomes.append(
                Outcome(started, time.monotonic(), None, type(exc).__name__, marker=marker)
            )
            await asyncio.sleep(0.05)
            continue
        outcomes.append(
            Outcome(
                started,
                time.monotonic(),
                response.status_code,
                body=response.json(),
                headers=dict(response.headers),
                marker=marker,
            )
        )
        if response.status_code != 200:
            await asyncio.sleep(0.05)  # an exporter backs off a little, too


async def _health_until(
    client: httpx.AsyncClient, seen: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        response = await client.get("/health")
        seen.append((time.monotonic(), response.status_code))
        await asyncio.sleep(0.2)


@dataclass
class Run:
    outcomes: list[Outcome]
    health: list[tuple[float, int]]  # (moment, status) of /health
    stopped_at: float
    back_at: float


async def _ingest_through_outage(
    base: str, headers: dict[str, str], cluster: PrivatePostgres
) -> Run:
    outcomes: list[Outcome] = []
    health: list[tuple[float, int]] = []
    stop = asyncio.Event()
    headers = {**headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        tasks = [
            asyncio.create_task(_send_until(client, headers, outcomes, stop))
            for _ in range(SENDERS)
        ]
        tasks.append(asyncio.create_task(_health_until(client, health, stop)))
        await asyncio.sleep(BEFORE_SECONDS)
        stopped_at = time.monotonic()
        await asyncio.to_thread(cluster.stop, "immediate")
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(cluster.start)
        back_at = time.monotonic()
        # Run on until every sender has had a few acknowledged batches since.
        while time.monotonic() - back_at < RECOVERY_DEADLINE_SECONDS:
            recent = [o for o in outcomes if o.started > back_at and o.status == 200]
            if len(recent) >= 3 * SENDERS:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
    return Run(outcomes, health, stopped_at, back_at)


def test_postgresql_stopped_mid_ingest_gives_503_loses_no_span_and_recovers_by_itself(
    private_postgres: PrivatePostgres, tmp_path
):
    url = private_postgres.url
    migrate.upgrade(url)
    add_owner(url)
    with gateways(url, tmp_path) as (gateway,):
        admin = Admin.sign_in(gateway.base)
        app_id = admin.create_app()
        key = admin.create_key(app_id, role="sdk")
        run = asyncio.run(_ingest_through_outage(gateway.base, key_headers(key), private_postgres))
        log = gateway.log()
    outcomes, stopped_at, back_at = run.outcomes, run.stopped_at, run.back_at

    statuses = {o.status for o in outcomes}
    assert statuses == {200, 503}, [
        (o.status, o.error, o.body) for o in outcomes if o.status != 200
    ]
    refused = [o for o in outcomes if o.status == 503]
    for outcome in refused:
        assert outcome.body is not None
        assert outcome.body["error"]["code"] == "service_unavailable"
        assert int(outcome.headers["retry-after"]) >= 1
    assert all(o.seconds < ANSWER_WITHIN_SECONDS for o in outcomes), max(
        o.seconds for o in outcomes
    )
    # Acknowledged before the outage, refused during it, acknowledged again after.
    assert any(o.status == 200 and o.ended < stopped_at for o in outcomes)
    assert any(o.status == 503 and stopped_at < o.started < back_at for o in outcomes)
    recovered = [o for o in outcomes if o.status == 200 and o.started > back_at]
    assert len(recovered) >= 3 * SENDERS, "the gateway did not recover by itself"
    # /health tells a load balancer the same story.
    assert any(status == 503 for moment, status in run.health if stopped_at < moment < back_at)
    assert run.health[-1][1] == 200

    stored = stored_per_batch_postgres(url, app_id)
    acknowledged = {o.marker for o in outcomes if o.status == 200}
    assert half_written(stored) == {}
    lost = [m for m in acknowledged if stored.get(m, 0) != SPANS_PER_BATCH]
    assert lost == []
    # A batch refused with 503 may still have been committed (the answer was lost
    # with the connection); it is then whole, and an exporter's retry is a no-op.
    unacknowledged_but_stored = set(stored) - acknowledged
    assert "Traceback" not in log, log
    # One warning per 10 s of outage, not one per refused request.
    assert log.count("database unavailable") <= 2, log
    print(
        f"\nbatches: {len(acknowledged)} acknowledged, {len(refused)} refused with 503, "
        f"{len(unacknowledged_but_stored)} refused but stored whole; "
        f"spans stored {sum(stored.values())}; first 200 after restart "
        f"{min(o.ended for o in recovered) - back_at:.2f}s; slowest answer "
        f"{max(o.seconds for o in outcomes):.2f}s"
    )


FROZEN_TIMEOUTS = {
    "AGENTMARK_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1",
    "AGENTMARK_DATABASE_TIMEOUT_SECONDS": "1",
}
# A statement (the pool's pre-ping), then a new connection, each bounded by 1 s.
FROZEN_ANSWER_WITHIN_SECONDS = 5.0


def test_a_frozen_postgresql_gets_503_within_the_statement_timeout_and_recovers(
    private_postgres: PrivatePostgres, tmp_path
):
    url = private_postgres.url
    migrate.upgrade(url)
    add_owner(url)
    with gateways(url, tmp_path, env=FROZEN_TIMEOUTS) as (gateway,):
        admin = Admin.sign_in(gateway.base)
        key = admin.create_key(admin.create_app(), role="sdk")
        headers = key_headers(key)
        score = {"resourceId": "trace-1", "name": "accuracy", "score": 1.0}

        def post_scores(count: int) -> list[tuple[int, float]]:
            async def one(client: httpx.AsyncClient) -> tuple[int, float]:
                started = time.monotonic()
                response = await client.post("/v1/scores", json=score, headers=headers)
                return response.status_code, time.monotonic() - started

            async def run() -> list[tuple[int, float]]:
                async with httpx.AsyncClient(base_url=gateway.base, timeout=20) as client:
                    return await asyncio.gather(*(one(client) for _ in range(count)))

            return asyncio.run(run())

        assert [status for status, _ in post_scores(2)] == [201, 201]
        with private_postgres.frozen():
            during = post_scores(4)
        after = post_scores(2)
        log = gateway.log()

    assert [status for status, _ in during] == [503] * 4, during
    assert max(seconds for _, seconds in during) < FROZEN_ANSWER_WITHIN_SECONDS, during
    assert [status for status, _ in after] == [201, 201], after
    assert "Traceback" not in log, log
