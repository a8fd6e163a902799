"""Rolling a key while the SDK clients using it keep sending, as a deployment would.

A fleet of SDK-like clients posts scores and reads a template without pause,
spread over two processes. An admin rolls the key with a grace period through
the management API; the fleet then switches to the new value one client at a
time (a rolling deploy), all within the grace period. Not one request gets a
401; once the grace period is over the old value gets 401 on both processes and
the new one keeps working.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import pytest

from tests.resilience.gateways import Admin, add_owner, gateways, key_headers
from tests.resilience.probes import PROBE_PARAMS, PROBE_PATH
from tests.resilience.traffic import TEMPLATE_PATH, publish_template

pytestmark = pytest.mark.slow

CLIENTS = 4
GRACE_SECONDS = 5
BEFORE_ROLL_SECONDS = 1.5
# Client i switches to the new value this long after the roll, one after another.
SWITCH_EVERY_SECONDS = 0.6
PACE_SECONDS = 0.02


@dataclass
class Client:
    """One SDK process: its configured key value, and what its requests got."""

    app_id: str
    value: str
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    switched_at: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.value, "X-Agentmark-App-Id": self.app_id}


async def _send(client: Client, bases: list[str], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for turn in itertools.count():
            if stop.is_set():
                return
            base = bases[turn % len(bases)]
            if turn % 2:
                response = await http.post(
                    f"{base}/v1/scores",
                    json={"resourceId": f"trace-{turn}", "name": "accuracy", "score": 1},
                    headers=client.headers,
                )
                client.statuses[("score", response.status_code)] += 1
            else:
                response = await http.get(
                    f"{base}/v1/templates", params={"path": TEMPLATE_PATH}, headers=client.headers
                )
                client.statuses[("template", response.status_code)] += 1
            await asyncio.sleep(PACE_SECONDS)


async def _roll_under_traffic(
    bases: list[str], admin: Admin, key: dict[str, str], fleet: list[Client]
) -> dict[str, object]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_send(client, bases, stop)) for client in fleet]
    await asyncio.sleep(BEFORE_ROLL_SECONDS)
    rolled = await asyncio.to_thread(admin.roll_key, key["id"], GRACE_SECONDS)
    rolled_at = time.monotonic()
    for client in fleet:
        await asyncio.sleep(SWITCH_EVERY_SECONDS)
        client.value = str(rolled["plaintext_key"])
        client.switched_at = time.monotonic() - rolled_at
    await asyncio.sleep(1.0)  # the whole fleet on the new value for a while
    stop.set()
    await asyncio.gather(*tasks)
    return rolled


def test_a_key_rolled_with_grace_under_traffic_gives_no_401_and_the_old_value_ends_after(
    pg_url, tmp_path
):
    add_owner(pg_url)
    with gateways(pg_url, tmp_path, count=2) as processes:
        bases = [p.base for p in processes]
        admin = Admin.sign_in(bases[0])
        app_id = admin.create_app()
        publish_template(bases[0], key_headers(admin.create_key(app_id, role="full-access")))
        key = admin.create_key(app_id, role="sdk")
        fleet = [Client(app_id, key["plaintext_key"]) for _ in range(CLIENTS)]

        rolled = asyncio.run(_roll_under_traffic(bases, admin, key, fleet))
        ends = datetime.fromisoformat(str(rolled["previous_key_expires_at"])).timestamp()
        assert all(c.switched_at is not None and c.switched_at < GRACE_SECONDS for c in fleet)
        time.sleep(max(0.0, ends - time.time()) + 0.1)
        old_after = [
            httpx.get(f"{b}{PROBE_PATH}", params=PROBE_PARAMS, headers=key_headers(key)).status_code
            for b in bases
        ]
        new_headers = {"Authorization": str(rolled["plaintext_key"]), "X-Agentmark-App-Id": app_id}
        new_after = [
            httpx.get(f"{b}{PROBE_PATH}", params=PROBE_PARAMS, headers=new_headers).status_code
            for b in bases
        ]

    totals: Counter[tuple[str, int]] = sum((c.statuses for c in fleet), Counter())
    assert set(totals) == {("score", 201), ("template", 200)}, totals
    assert old_after == [401, 401]
    assert new_after == [404, 404]
    print(
        f"\n{sum(totals.values())} requests through the roll: {dict(totals)}; switched at "
        + ", ".join(f"{c.switched_at:.1f}s" for c in fleet)
        + f" after the roll (grace {GRACE_SECONDS}s)"
    )
