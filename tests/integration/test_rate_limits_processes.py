"""Two real gateway processes on one database share a key's rate limit.

The test alternates between them, as a client behind no balancer would. The
database store syncs every 50 ms here, so each process learns of the other's
requests within about that long; the limit holds within that tolerance.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.users.service import create_user
from tests.clock import wait_for_a_window_with
from tests.conftest import PEPPER
from tests.servers import gateway_process

pytestmark = pytest.mark.slow

PROBE = "/v1/templates"
PROBE_PARAMS = {"path": "missing.prompt.mdx"}
PASSWORD = "a long password"


def _add_owner(database_url: str) -> None:
    async def work() -> None:
        engine = make_engine(database_url)
        async with make_sessionmaker(engine)() as session:
            await create_user(session, email="ops@example.com", role="owner", password=PASSWORD)
            await session.commit()
        await engine.dispose()

    asyncio.run(work())


@pytest.fixture
def two_gateways(database_url, tmp_path):
    _add_owner(database_url)
    env = {"AGENTMARK_RATE_LIMIT_STORE": "database", "AGENTMARK_RATE_LIMIT_SYNC_SECONDS": "0.05"}
    with (
        gateway_process(database_url, tmp_path / "a", pepper=PEPPER, extra_env=env) as first,
        gateway_process(database_url, tmp_path / "b", pepper=PEPPER, extra_env=env) as second,
    ):
        login = httpx.post(
            f"{first}/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD}
        )
        yield first, second, {"Authorization": f"Bearer {login.json()['data']['token']}"}


def make_key(base: str, admin: dict[str, str], limit: int) -> tuple[str, str]:
    app = httpx.post(f"{base}/v1/apps", json={"name": f"app-{uuid.uuid4().hex[:8]}"}, headers=admin)
    app_id = app.json()["data"]["id"]
    key = httpx.post(
        f"{base}/v1/api-keys",
        json={"name": "k", "role": "sdk", "rate_limit_per_minute": limit},
        headers={**admin, "X-Agentmark-App-Id": app_id},
    )
    return app_id, key.json()["data"]["plaintext_key"]


def test_two_processes_share_a_keys_limit_within_one_sync_interval(two_gateways):
    first, second, admin = two_gateways
    app_id, value = make_key(first, admin, limit=10)
    headers = {"Authorization": value, "X-Agentmark-App-Id": app_id}
    # All requests in one window of the real clock: not in the last seconds of a minute.
    wait_for_a_window_with(seconds_left=10)
    answers: list[tuple[str, int]] = []
    for i in range(30):
        base = (first, second)[i % 2]
        answers.append(
            (base, httpx.get(f"{base}{PROBE}", params=PROBE_PARAMS, headers=headers).status_code)
        )
        time.sleep(0.03)
    admitted = [base for base, status in answers if status == 404]
    assert {status for _, status in answers} == {404, 429}
    # Each process admitted some: the count is shared, not split or duplicated.
    assert first in admitted and second in admitted
    assert 10 <= len(admitted) <= 12, answers
    # Once both have synced, both refuse.
    time.sleep(0.3)
    for base in (first, second):
        response = httpx.get(f"{base}{PROBE}", params=PROBE_PARAMS, headers=headers)
        assert response.status_code == 429
        assert response.headers["X-RateLimit-Limit"] == "10"
        assert int(response.headers["Retry-After"]) >= 1
