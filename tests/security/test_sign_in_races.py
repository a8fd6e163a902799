"""Failed sign-ins are counted atomically: a burst for one email checks only the allowed few."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agentmark_gateway.auth import service as auth_service
from tests.conftest import add_user
from tests.resilience.gateways import OWNER_EMAIL, OWNER_PASSWORD, add_owner, gateways

BURST = 100
MAX_FAILURES = 5


async def _burst(base: str, password: str) -> list[int]:
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post("/v1/auth/login", json={"email": OWNER_EMAIL, "password": password})
                for _ in range(BURST)
            )
        )
    return [answer.status_code for answer in answers]


@pytest.mark.slow
def test_a_hundred_concurrent_wrong_passwords_check_only_the_allowed_few(database_url, tmp_path):
    add_owner(database_url)
    env = {"AGENTMARK_LOGIN_MAX_FAILURES": str(MAX_FAILURES)}
    with gateways(database_url, tmp_path, env=env) as [gateway]:
        statuses = Counter(asyncio.run(_burst(gateway.base, "wrong password")))
        # Every 401 is a password that was checked; the rest were refused unchecked.
        assert statuses == {401: MAX_FAILURES, 429: BURST - MAX_FAILURES}, statuses
        right = httpx.post(
            f"{gateway.base}/v1/auth/login",
            json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        )
        assert right.status_code == 429
        assert int(right.headers["retry-after"]) > 0


def test_the_count_starts_again_once_the_window_has_passed(client, monkeypatch):
    window = client.app.state.settings.login_window_seconds
    moment = [datetime.now(UTC)]
    monkeypatch.setattr(auth_service, "utcnow", lambda: moment[0])
    add_user(client, "w@example.com", "read", password=OWNER_PASSWORD)
    wrong = {"email": "w@example.com", "password": "wrong password"}
    right = {"email": "w@example.com", "password": OWNER_PASSWORD}
    statuses = [client.post("/v1/auth/login", json=wrong).status_code for _ in range(6)]
    assert statuses == [*[401] * MAX_FAILURES, 429]
    moment[0] += timedelta(seconds=window + 1)
    assert client.post("/v1/auth/login", json=right).status_code == 200
    # A success clears the count: the full allowance is there again.
    statuses = [client.post("/v1/auth/login", json=wrong).status_code for _ in range(6)]
    assert statuses == [*[401] * MAX_FAILURES, 429]
