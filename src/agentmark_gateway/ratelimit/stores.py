"""Shared counts for several gateway processes: a database table or Redis.

Both are written in batches by ``RateLimiter.sync``, never once per request.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.ratelimit.models import RateLimitCounter

__all__ = ["DatabaseStore", "RedisStore"]

T = TypeVar("T")

# Rows per statement: well under the bound-parameter limits of SQLite and asyncpg.
CHUNK = 1000


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DatabaseStore:
    """Counts in ``rate_limit_counters``: one upsert and one read per sync."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    def _insert(self, dialect: str) -> Any:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(RateLimitCounter)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(RateLimitCounter)

    async def exchange(
        self, window_id: int, increments: Mapping[str, int], buckets: Collection[str]
    ) -> dict[str, int]:
        totals: dict[str, int] = {}
        async with self._sessionmaker() as session, session.begin():
            dialect = session.get_bind().dialect.name
            # Sorted, so two processes lock the same rows in the same order (no deadlock).
            rows = [
                {"bucket": bucket, "window_id": window_id, "count": count}
                for bucket, count in sorted(increments.items())
                if count
            ]
            for chunk in _chunks(rows):
                statement = self._insert(dialect).values(list(chunk))
                statement = statement.on_conflict_do_update(
                    index_elements=["bucket", "window_id"],
                    set_={"count": RateLimitCounter.count + statement.excluded.count},
                )
                await session.execute(statement)
            for names in _chunks(sorted(buckets)):
                result = await session.execute(
                    select(RateLimitCounter.bucket, RateLimitCounter.count).where(
                        RateLimitCounter.window_id == window_id,
                        RateLimitCounter.bucket.in_(names),
                    )
                )
                totals.update((bucket, count) for bucket, count in result)
        return totals

    async def forget_before(self, window_id: int) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(RateLimitCounter).where(RateLimitCounter.window_id < window_id)
            )

    async def close(self) -> None:
        """The engine belongs to the gateway, which disposes of it."""


class RedisStore:
    """Counts in Redis keys that expire on their own two windows later."""

    def __init__(
        self, url: str, *, window_seconds: float, prefix: str = "agentmark:ratelimit"
    ) -> None:
        # Imported here: redis is needed only by deployments that configure it.
        try:
            from redis.asyncio import Redis
        except ImportError:
            raise RuntimeError(
                "AGENTMARK_REDIS_URL is set but the redis package is missing: "
                "pip install 'redis>=5'"
            ) from None

        self._client: Any = Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ttl = max(2, math.ceil(window_seconds * 2))
        # The window length is part of the name: processes configured differently
        # must not add up counts of different windows.
        self._prefix = f"{prefix}:{window_seconds:g}"

    def _name(self, window_id: int, bucket: str) -> str:
        return f"{self._prefix}:{window_id}:{bucket}"

    async def exchange(
        self, window_id: int, increments: Mapping[str, int], buckets: Collection[str]
    ) -> dict[str, int]:
        added = [(bucket, count) for bucket, count in increments.items() if count]
        others = [bucket for bucket in buckets if not increments.get(bucket)]
        async with self._client.pipeline(transaction=False) as pipe:
            for bucket, count in added:
                name = self._name(window_id, bucket)
                pipe.incrby(name, count)
                pipe.expire(name, self._ttl)
            if others:
                pipe.mget([self._name(window_id, bucket) for bucket in others])
            results = await pipe.execute()
        totals = {bucket: int(results[2 * i]) for i, (bucket, _) in enumerate(added)}
        if others:
            for bucket, value in zip(others, results[-1], strict=True):
                if value is not None:
                    totals[bucket] = int(value)
        return totals

    async def forget_before(self, window_id: int) -> None:
        """Keys expire by themselves."""

    async def close(self) -> None:
        await self._client.aclose()
