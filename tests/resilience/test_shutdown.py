"""SIGTERM while spans pour in: requests in flight finish, new ones are refused
cleanly, and every acknowledged span is stored.

Clients keep connections alive, as exporters do. After the signal the server
stops listening (a new connection is refused), answers the requests it is
already serving (with ``Connection: close``), closes idle connections, runs its
shutdown (last-used times flushed, pool closed) and exits.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.resilience.gateways import Admin, GatewayProcess, add_owner, gateways, key_headers
from tests.resilience.traffic import (
    SPANS_PER_BATCH,
    Outcome,
    batch,
    half_written,
    new_marker,
    stored_per_batch_postgres,
)

pytestmark = pytest.mark.slow

SENDERS = 8
LOAD_BEFORE_SECONDS = 3.0
AFTER_SECONDS = 2.0
# Sent this long before the signal: surely read by the server, so "in flight".
IN_FLIGHT_MARGIN = 0.05


async def _send(
    client: httpx.AsyncClient, headers: dict[str, str], outcomes: list[Outcome], until: float
) -> None:
    while time.monotonic() < until:
        marker = new_marker()
        started = time.monotonic()
        try:
            response = await client.post("/v1/traces", content=batch(marker), headers=headers)
        except httpx.TransportError as exc:
            outcomes.append(
                Outcome(started, time.monotonic(), None, type(exc).__name__, marker=marker)
            )
            await asyncio.sleep(0.05)
            continue
        outcomes.append(Outcome(started, time.monotonic(), response.status_code, marker=marker))


@dataclass
class Run:
    outcomes: list[Outcome]
    signalled_at: float
    exit_code: int
    exited_at: float


async def _terminate_under_load(gateway: GatewayProcess, headers: dict[str, str]) -> Run:
    outcomes: list[Outcome] = []
    headers = {**headers, "Content-Type": "application/json"}
    until = time.monotonic() + LOAD_BEFORE_SECONDS + AFTER_SECONDS
    async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as client:
        senders = [
            asyncio.create_task(_send(client, headers, outcomes, until)) for _ in range(SENDERS)
        ]
        await asyncio.sleep(LOAD_BEFORE_SECONDS)
        signalled_at = time.monotonic()
        gateway.sigterm()
        exit_code = await asyncio.to_thread(gateway.process.wait, 30)
        exited_at = time.monotonic()
        await asyncio.gather(*senders)
    return Run(outcomes, signalled_at, exit_code, exited_at)


# Timing-dependent on a shared 2-core machine: a run where other load delays the
# restart or the signal proves nothing either way, so it is tried again.
@pytest.mark.flaky(reruns=2)
def test_sigterm_under_load_finishes_requests_in_flight_refuses_new_ones_and_loses_nothing(
    pg_url, tmp_path
):
    add_owner(pg_url)
    # Info level: the server then logs the end of its shutdown.
    with gateways(pg_url, tmp_path, env={"AGENTMARK_LOG_LEVEL": "info"}) as (gateway,):
        admin = Admin.sign_in(gateway.base)
        app_id = admin.create_app()
        key = admin.create_key(app_id, role="sdk")
        run = asyncio.run(_terminate_under_load(gateway, key_headers(key)))
        log = gateway.log()
    outcomes, signalled_at, exit_code = run.outcomes, run.signalled_at, run.exit_code
    exited_after = run.exited_at - signalled_at

    in_flight = [
        o for o in outcomes if o.started < signalled_at - IN_FLIGHT_MARGIN < signalled_at < o.ended
    ]
    assert in_flight, "no request was in flight at the signal; the test proves nothing"
    assert [o.status for o in in_flight] == [200] * len(in_flight), in_flight
    before = [o for o in outcomes if o.started < signalled_at - IN_FLIGHT_MARGIN]
    assert {o.status for o in before} == {200}, [o for o in before if o.status != 200]
    after = [o for o in outcomes if o.started > signalled_at]
    refused = [o for o in after if o.status != 200]
    assert refused, "nothing was sent after the signal"
    # Refused cleanly: a new connection is refused; a kept-alive connection the
    # server closed as it shut down ends without any answer (closed or reset:
    # the request was never read, so nothing of it is stored and an exporter may
    # send it again); never an error status, never a wait for a timeout.
    kinds = {o.error or str(o.status) for o in refused}
    assert kinds <= {"ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}, kinds
    assert max(o.seconds for o in refused) < 1.0
    # Once the server has begun shutting down (it looks every 0.1 s), every new
    # connection is refused.
    late = [o for o in after if o.started > signalled_at + 0.2]
    assert late and {o.error for o in late} == {"ConnectError"}, late
    # uvicorn re-raises the signal once it has shut down, so the exit status
    # says "ended by SIGTERM" as a supervisor expects (systemd counts it clean).
    assert exit_code in (0, -signal.SIGTERM), log
    assert "Application shutdown complete." in log  # the lifespan's clean-up ran
    assert exited_after < 5
    assert "Traceback" not in log, log

    stored = stored_per_batch_postgres(pg_url, app_id)
    acknowledged = {o.marker for o in outcomes if o.status == 200}
    assert half_written(stored) == {}
    assert [m for m in acknowledged if stored.get(m) != SPANS_PER_BATCH] == []
    # A batch that got no answer was never read by the server: nothing of it stored.
    unanswered = {o.marker for o in refused}
    assert unanswered.isdisjoint(stored)
    print(
        f"\n{len(acknowledged)} batches acknowledged ({len(in_flight)} in flight at the signal, "
        f"all answered 200); after it: "
        + ", ".join(
            f"{k} x{sum(1 for o in refused if (o.error or str(o.status)) == k)}"
            for k in sorted(kinds)
        )
        + f"; exit status {exit_code} {exited_after:.2f}s after SIGTERM"
    )
