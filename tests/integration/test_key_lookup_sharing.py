"""Requests carrying the same key value while no cache knows it share one lookup."""

from __future__ import annotations

import asyncio

import pytest

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.errors import Unauthorized
from agentmark_gateway.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The change-feed poller opens sessions through the same key lookup: keep it asleep.
    return settings.model_copy(update={"invalidation_poll_seconds": 3600.0})


def _count_sessions(keys) -> list[int]:
    opened: list[int] = []
    real = keys._sessionmaker
    keys._sessionmaker = lambda: opened.append(1) or real()
    return opened


def test_a_flood_of_one_made_up_key_costs_one_lookup(client):
    keys = client.app.state.gateway.keys
    opened = _count_sessions(keys)
    raw = keygen.generate()

    async def flood() -> list[object]:
        calls = (keys.load(raw) for _ in range(20))
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = client.portal.call(flood)
    assert all(isinstance(answer, Unauthorized) for answer in answers)
    assert opened == [1]


def test_concurrent_first_uses_of_a_key_share_one_lookup(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    keys = client.app.state.gateway.keys
    keys.invalidate()
    opened = _count_sessions(keys)

    async def together() -> list[object]:
        calls = (keys.load(key["plaintext_key"]) for _ in range(20))
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = client.portal.call(together)
    assert {getattr(answer, "id", answer) for answer in answers} == {key["id"]}
    assert opened == [1]
