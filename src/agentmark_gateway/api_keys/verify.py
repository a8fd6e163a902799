"""From a key value to the key's record: caches in front of the database.

``KeyLookup`` is step 3 of ``authenticate`` (api_keys/authenticate.py, where
the whole order of checks is). The caches sit in front of the checksum: a
value seen in the last seconds (known or unknown) costs one BLAKE2b and a dict
lookup; a miss costs one indexed read by HMAC digest; nothing here writes to
the database. A committed change to a key or an app forgets what it names
(``apply_change``), in this process at once and in the others by the change
feed (api_keys/changes.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys.cache import TTLCache
from agentmark_gateway.api_keys.changes import KEYS_CHANGED, TEMPLATES_CHANGED
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.errors import NOT_AUTHORIZED, Unauthorized
from agentmark_gateway.netaccess import Allowlist
from agentmark_gateway.observability.metrics import KEY_CACHE
from agentmark_gateway.permissions.catalog import resolve_permissions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    id: str
    app_id: str
    name: str
    permissions: frozenset[str]
    # Seconds since the epoch; None for a key that never expires.
    expires_at: float | None
    rate_limit_per_minute: int | None = None
    allowed_cidrs: tuple[str, ...] | None = None
    # The same list parsed once, when the key is loaded; empty when it cannot be
    # read, which lets no address in.
    allowlist: Allowlist | None = None


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _allowlist(key_id: str, cidrs: list[str] | None) -> Allowlist | None:
    if not cidrs:
        return None
    try:
        return Allowlist.from_cidrs(tuple(cidrs))
    except (TypeError, ValueError):
        # Written around the service (which validates): fail closed.
        log.warning("key %s has an unreadable IP allowlist; refusing every address", key_id)
        return Allowlist(())


class KeyLookup:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        pepper: bytes,
        cache_size: int = 10_000,
        cache_ttl: float = 30.0,
        negative_cache_size: int = 10_000,
        negative_cache_ttl: float = 5.0,
        on_app_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._pepper = pepper
        self._found: TTLCache[VerifiedKey] = TTLCache(cache_size, cache_ttl)
        self._unknown: TTLCache[bool] = TTLCache(negative_cache_size, negative_cache_ttl)
        # Lookups in flight by cache id: requests with the same value share one.
        self._loading: dict[str, asyncio.Future[VerifiedKey | None]] = {}
        # Keyed once; each lookup copies the keyed state (cheaper than keying anew).
        self._cache_hasher = hashlib.blake2b(key=secrets.token_bytes(32), digest_size=16)
        # Bumped by every invalidation; a lookup that raced one is not cached.
        self._generation = 0
        # Told of every change to an app's templates or the app itself (None: could
        # be anything), for the caches of app data that share this change feed.
        self._on_app_change = on_app_change or (lambda app_id: None)

    def cached(self, raw: str) -> VerifiedKey | Unauthorized | None:
        """Step 2 and the memory half of step 3: the key this process knows for
        ``raw``, the 401 for a value that cannot be a key or is known to be none,
        or None when only the database can tell (``load``)."""
        if len(raw) != keygen.KEY_LENGTH:
            return NOT_AUTHORIZED
        cached_as = self._cache_id(raw)
        key = self._found.get(cached_as)
        KEY_CACHE.record(key is not None)
        if key is None and (self._unknown.get(cached_as) or not keygen.is_well_formed(raw)):
            return NOT_AUTHORIZED
        return key

    async def load(self, raw: str) -> VerifiedKey | Unauthorized:
        """The database half of step 3, for a value ``cached`` could not decide
        (the 401 when no live key has it)."""
        key = await self._load_once(self._cache_id(raw), raw)
        return NOT_AUTHORIZED if key is None else key

    def _cache_id(self, raw: str) -> str:
        """What the caches know a key value by: BLAKE2b under a per-process secret.

        Cheaper than the checksum and the HMAC together, which a cache hit skips:
        a value is cached only after passing both (or failing the lookup), and
        128-bit ids of different values do not collide.
        """
        hasher = self._cache_hasher.copy()
        hasher.update(raw.encode())
        return hasher.hexdigest()

    async def _load_once(self, cached_as: str, raw: str) -> VerifiedKey | None:
        """One database lookup per value at a time, however many requests carry it.

        When a cache entry ends, every request in flight with that value (a busy
        SDK, or a flood of one made-up key) would otherwise look it up at once.
        """
        pending = self._loading.get(cached_as)
        if pending is None:
            pending = asyncio.ensure_future(self._load(cached_as, keygen.digest(raw, self._pepper)))
            # Read the outcome even if every waiter was cancelled (no "never retrieved").
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._loading[cached_as] = pending
            pending.add_done_callback(lambda done: self._loading.pop(cached_as, None))
        # Shielded: one waiter's disconnect must not cancel the others' lookup.
        return await asyncio.shield(pending)

    async def _load(self, cached_as: str, digest: str) -> VerifiedKey | None:
        generation = self._generation
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(ApiKey).where(ApiKey.digest == digest, ApiKey.deleted_at.is_(None))
            )
        if row is None:
            if generation == self._generation:
                self._unknown.set(cached_as, True)
            return None
        key = VerifiedKey(
            id=row.id,
            app_id=row.app_id,
            name=row.name,
            permissions=resolve_permissions(row.role, row.permissions),
            expires_at=_epoch(row.expires_at),
            rate_limit_per_minute=row.rate_limit_per_minute,
            allowed_cidrs=tuple(row.allowed_cidrs) if row.allowed_cidrs else None,
            allowlist=_allowlist(row.id, row.allowed_cidrs),
        )
        if generation == self._generation:
            self._found.set(cached_as, key)
        return key

    # -- invalidation ---------------------------------------------------------

    def invalidate(self, *, key_id: str | None = None, app_id: str | None = None) -> None:
        """Forget cached keys by id or by app; the next request reads the database."""
        self._generation += 1
        # A new key may reuse nothing, but a roll or an edit can turn an unknown
        # digest into a known one only by creating it, which never was negative-
        # cached for long; clearing is cheap and keeps the rule simple.
        self._unknown.clear()
        if key_id is None and app_id is None:
            self._found.clear()
            return
        for digest, (_deadline, key) in list(self._found._data.items()):
            if key.id == key_id or key.app_id == app_id:
                self._found.pop(digest)

    def apply_change(self, kind: str, *, key_id: str | None, app_id: str | None) -> None:
        """Forget what one change names (api_keys/changes.py), in this process."""
        if kind == TEMPLATES_CHANGED:
            self._on_app_change(app_id)
            return
        if kind != KEYS_CHANGED:
            # ANYTHING_CHANGED, or a kind written by a newer version: forget
            # everything rather than guess.
            self.invalidate()
            self._on_app_change(None)
            return
        self.invalidate(key_id=key_id, app_id=app_id)
        if key_id is None:
            # An app deletion (or every key of an app): its data went with it.
            self._on_app_change(app_id)
