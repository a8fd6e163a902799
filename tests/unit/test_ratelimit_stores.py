"""The shared stores: a counter table (SQLite or PostgreSQL, as the suite runs) and Redis."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.ratelimit.stores import DatabaseStore, RedisStore

REDIS_URL = os.environ.get("AGENTMARK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_database_store_adds_up_the_counts_of_two_processes(database_url):
    async def scenario() -> None:
        engines = [make_engine(database_url) for _ in range(2)]
        one, two = (DatabaseStore(make_sessionmaker(e)) for e in engines)
        try:
            assert await one.exchange(7, {"key:a": 3, "app:x": 3}, {"key:a", "app:x"}) == {
                "key:a": 3,
                "app:x": 3,
            }
            assert await two.exchange(7, {"key:a": 2}, {"key:a", "app:x"}) == {
                "key:a": 5,
                "app:x": 3,
            }
            # A read with nothing to add; another window is counted apart.
            assert await one.exchange(7, {}, {"key:a", "key:unseen"}) == {"key:a": 5}
            assert await one.exchange(8, {"key:a": 1}, {"key:a"}) == {"key:a": 1}
            await two.forget_before(8)
            assert await one.exchange(7, {}, {"key:a"}) == {}
            assert await one.exchange(8, {}, {"key:a"}) == {"key:a": 1}
        finally:
            for engine in engines:
                await engine.dispose()

    asyncio.run(scenario())


def test_database_store_takes_many_buckets_in_one_sync(database_url):
    async def scenario() -> None:
        engine = make_engine(database_url)
        store = DatabaseStore(make_sessionmaker(engine))
        try:
            increments = {f"key:{i:05d}": i % 7 + 1 for i in range(2500)}
            totals = await store.exchange(1, increments, set(increments))
            assert totals == increments
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_concurrent_syncs_of_the_same_buckets_lose_no_count(database_url):
    async def scenario() -> None:
        engines = [make_engine(database_url) for _ in range(4)]
        stores = [DatabaseStore(make_sessionmaker(e)) for e in engines]
        buckets = {"key:a": 1, "key:b": 1, "app:x": 2}
        try:
            for _ in range(5):
                await asyncio.gather(*(s.exchange(3, buckets, set(buckets)) for s in stores))
            final = await stores[0].exchange(3, {}, set(buckets))
            assert final == {"key:a": 20, "key:b": 20, "app:x": 40}
        finally:
            for engine in engines:
                await engine.dispose()

    asyncio.run(scenario())


@pytest.fixture
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis at {REDIS_URL} does not answer ({exc})")
    finally:
        client.close()
    return REDIS_URL


def test_redis_store_adds_up_the_counts_of_two_processes(redis_url):
    prefix = f"agentmark-test:{uuid.uuid4().hex}"

    async def scenario() -> None:
        one = RedisStore(redis_url, window_seconds=60, prefix=prefix)
        two = RedisStore(redis_url, window_seconds=60, prefix=prefix)
        try:
            assert await one.exchange(7, {"key:a": 3, "app:x": 3}, {"key:a", "app:x"}) == {
                "key:a": 3,
                "app:x": 3,
            }
            assert await two.exchange(7, {"key:a": 2}, {"key:a", "app:x"}) == {
                "key:a": 5,
                "app:x": 3,
            }
            assert await one.exchange(7, {}, {"key:a", "key:unseen"}) == {"key:a": 5}
            assert await one.exchange(8, {"key:a": 1}, {"key:a"}) == {"key:a": 1}
            # Counters expire by themselves, two windows later.
            ttl = await one._client.ttl(f"{prefix}:60:7:key:a")
            assert 100 < ttl <= 120
        finally:
            await one._client.delete(*await one._client.keys(f"{prefix}:*"))
            await one.close()
            await two.close()

    asyncio.run(scenario())
