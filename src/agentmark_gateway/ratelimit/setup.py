"""The limiter a gateway process runs with, chosen from settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.ratelimit.limiter import RateLimiter, SharedStore
from agentmark_gateway.ratelimit.stores import DatabaseStore, RedisStore
from agentmark_gateway.settings import Settings


def build_limiter(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> RateLimiter:
    mode = settings.resolved_rate_limit_store
    store: SharedStore | None = None
    if mode == "database":
        store = DatabaseStore(sessionmaker)
    elif mode == "redis":
        if not settings.redis_url:
            raise ValueError("rate_limit_store is redis but AGENTMARK_REDIS_URL is not set")
        store = RedisStore(settings.redis_url, window_seconds=settings.rate_limit_window_seconds)
    return RateLimiter(
        per_key=settings.rate_limit_per_key,
        per_app=settings.rate_limit_per_app,
        window_seconds=settings.rate_limit_window_seconds,
        store=store,
    )
