"""What one gateway process holds while it runs: engine, caches and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agentmark_gateway import retention
from agentmark_gateway.api_keys.authenticate import Authenticator
from agentmark_gateway.api_keys.change_listener import ChangeListener
from agentmark_gateway.api_keys.changes import ChangeFeed, apply_on_commit
from agentmark_gateway.api_keys.last_used import LastUsedRecorder
from agentmark_gateway.api_keys.verify import KeyLookup
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.db.group_commit import GroupCommit
from agentmark_gateway.filemodes import private_dir
from agentmark_gateway.netaccess import ClientAddressResolver
from agentmark_gateway.ratelimit import RateLimiter, build_limiter
from agentmark_gateway.settings import Settings
from agentmark_gateway.templates.cache import TemplateCache
from agentmark_gateway.usage import rollup as usage_rollup
from agentmark_gateway.usage.counter import UsageCounter

# How long shutdown waits for the background tasks it cancelled.
STOP_TASKS_SECONDS = 5.0

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pepper: bytes
    keys: KeyLookup
    last_used: LastUsedRecorder
    limiter: RateLimiter
    client_addresses: ClientAddressResolver
    authenticator: Authenticator
    usage: UsageCounter
    templates: TemplateCache
    changes: ChangeFeed
    # The one writer of the SDK's spans and scores: many requests, one commit.
    writes: GroupCommit
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Gateway:
        if settings.data_dir.is_dir():
            private_dir(settings.data_dir)  # one made before this version, or by hand
        engine = make_engine(
            settings.resolved_database_url,
            timeout=settings.database_timeout_seconds,
            statement_timeout=settings.database_statement_timeout_seconds,
        )
        sessionmaker = make_sessionmaker(engine)
        pepper = settings.pepper_bytes()
        last_used = LastUsedRecorder(sessionmaker)
        templates = TemplateCache(
            max_bytes=settings.template_cache_bytes, ttl=settings.template_cache_ttl_seconds
        )
        keys = KeyLookup(
            sessionmaker=sessionmaker,
            pepper=pepper,
            cache_size=settings.key_cache_size,
            cache_ttl=settings.key_cache_ttl_seconds,
            negative_cache_size=settings.negative_cache_size,
            negative_cache_ttl=settings.negative_cache_ttl_seconds,
            on_app_change=lambda app_id: (
                templates.clear() if app_id is None else templates.forget_app(app_id)
            ),
        )
        # A change this process commits is forgotten here at once; the feed
        # brings those of other processes.
        apply_on_commit(sessionmaker, keys.apply_change)
        limiter = build_limiter(settings, sessionmaker)
        client_addresses = ClientAddressResolver(settings.trusted_proxies)
        return cls(
            settings,
            engine,
            sessionmaker,
            pepper,
            keys,
            last_used,
            limiter=limiter,
            client_addresses=client_addresses,
            authenticator=Authenticator(keys, limiter, client_addresses, last_used),
            usage=UsageCounter(sessionmaker, client_addresses, enabled=settings.usage_counting),
            templates=templates,
            changes=ChangeFeed(sessionmaker, keys.apply_change),
            writes=GroupCommit(sessionmaker),
        )

    async def start(self) -> None:
        self.writes.start()
        await self.changes.start()
        self.tasks.append(
            asyncio.create_task(self.changes.watch(self.settings.invalidation_poll_seconds))
        )
        if self.engine.dialect.name == "postgresql":
            # Other processes' changes wake the poll as they commit; SQLite is polled only.
            listener = ChangeListener(
                self.engine, self.changes.wake, timeout=self.settings.database_timeout_seconds
            )
            self.tasks.append(asyncio.create_task(listener.run()))
        self.tasks.append(
            asyncio.create_task(self.last_used.run(self.settings.last_used_flush_seconds))
        )
        self.tasks.append(asyncio.create_task(self.usage.run(self.settings.usage_flush_seconds)))
        self.tasks.append(asyncio.create_task(usage_rollup.run(self.sessionmaker)))
        self.tasks.append(
            asyncio.create_task(retention.run(self.sessionmaker, self.settings.retention_days))
        )
        if self.limiter.store is not None:
            self.tasks.append(
                asyncio.create_task(self.limiter.run(self.settings.rate_limit_sync_seconds))
            )

    async def stop(self) -> None:
        # First: what waits to be written is stored and answered while the pool is open.
        await self.writes.close()
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # Bounded: a task that ignored its cancellation must not hold the
            # process (and a rolling restart) forever.
            done, stuck = await asyncio.wait(self.tasks, timeout=STOP_TASKS_SECONDS)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("background task failed", exc_info=task.exception())
            for task in stuck:
                log.warning("background task %s did not stop", task.get_coro())
        self.tasks.clear()
        with contextlib.suppress(Exception):
            await self.last_used.flush()
        with contextlib.suppress(Exception):
            await self.usage.flush()
        with contextlib.suppress(Exception):
            await self.limiter.close()
        await self.engine.dispose()
