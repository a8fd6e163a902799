"""What one gateway process holds while it runs: engine, caches and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import Scope

from agentmark_gateway.api_keys.change_listener import ChangeListener
from agentmark_gateway.api_keys.changes import ChangeFeed, apply_on_commit
from agentmark_gateway.api_keys.last_used import LastUsedRecorder
from agentmark_gateway.api_keys.verify import NOT_AUTHORIZED, KeyVerifier, VerifiedKey
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.errors import RateLimited, Unauthorized
from agentmark_gateway.filemodes import private_dir
from agentmark_gateway.netaccess import Address, ClientAddressResolver
from agentmark_gateway.ratelimit import SCOPE_KEY, RateLimiter, build_limiter
from agentmark_gateway.settings import Settings
from agentmark_gateway.templates.cache import TemplateCache

FORWARDED_FOR = b"x-forwarded-for"
# How long shutdown waits for the background tasks it cancelled.
STOP_TASKS_SECONDS = 5.0

log = logging.getLogger(__name__)


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    pepper: bytes
    verifier: KeyVerifier
    last_used: LastUsedRecorder
    limiter: RateLimiter
    client_addresses: ClientAddressResolver
    templates: TemplateCache
    changes: ChangeFeed
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
        verifier = KeyVerifier(
            sessionmaker=sessionmaker,
            pepper=pepper,
            last_used=last_used,
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
        apply_on_commit(sessionmaker, verifier.apply_change)
        return cls(
            settings,
            engine,
            sessionmaker,
            pepper,
            verifier,
            last_used,
            limiter=build_limiter(settings, sessionmaker),
            client_addresses=ClientAddressResolver(settings.trusted_proxies),
            templates=templates,
            changes=ChangeFeed(sessionmaker, verifier.apply_change),
        )

    def client_address(self, scope: Scope) -> Address | None:
        """The socket peer, or the client a trusted proxy names in X-Forwarded-For."""
        client = scope.get("client")
        forwarded = [
            value.decode("latin-1") for name, value in scope["headers"] if name == FORWARDED_FOR
        ]
        return self.client_addresses.resolve(client[0] if client else None, forwarded)

    async def verify_request(
        self, authorizations: list[str], app_ids: list[str], scope: Scope
    ) -> VerifiedKey:
        """The key of a data request (401), counted by the rate limiter (429).

        ``authorizations`` and ``app_ids`` are every line of the request's
        ``Authorization`` and ``X-Agentmark-App-Id`` headers: more than one of
        either is refused.
        """
        key = self.verify_known_request(authorizations, app_ids, scope)
        if key is None:
            address = partial(self.client_address, scope)
            key = await self.verifier.verify(authorizations[0], app_ids[0], address)
            key = self._admit(key, scope)
        return key

    def verify_known_request(
        self, authorizations: list[str], app_ids: list[str], scope: Scope
    ) -> VerifiedKey | None:
        """``verify_request``'s answer when no database is needed, else None.

        Synchronous: a cached key (the usual case) costs no coroutine.
        """
        if len(authorizations) > 1:
            # Which one counts would depend on who reads them (a proxy may take the last).
            raise Unauthorized(NOT_AUTHORIZED)
        if len(app_ids) > 1:
            raise Unauthorized("Missing app id")
        # The allowlist is checked inside the verifier, so a refused address never
        # reaches the rate counters in _admit.
        key = self.verifier.verify_known(
            authorizations[0] if authorizations else None,
            app_ids[0] if app_ids else None,
            partial(self.client_address, scope),
        )
        return None if key is None else self._admit(key, scope)

    def _admit(self, key: VerifiedKey, scope: Scope) -> VerifiedKey:
        decision = self.limiter.check(key)
        if decision is not None:
            scope[SCOPE_KEY] = decision
            if not decision.allowed:
                raise RateLimited(
                    "Rate limit exceeded; retry after the window resets",
                    headers=decision.headers(),
                )
        return key

    async def start(self) -> None:
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
        if self.limiter.store is not None:
            self.tasks.append(
                asyncio.create_task(self.limiter.run(self.settings.rate_limit_sync_seconds))
            )

    async def stop(self) -> None:
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
            await self.limiter.close()
        await self.engine.dispose()
