"""The hot path: from an ``Authorization`` header to the key's app and permissions.

Order of checks (DESIGN section 6): shape and checksum, digest, cache or
database, not deleted, not expired, app matches the header, client address in
the key's allowlist (when it has one), permissions. The caches sit in front of
the checksum: a value seen in the last seconds (known or unknown) costs one
BLAKE2b and a dict lookup; nothing here writes to the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys.cache import TTLCache
from agentmark_gateway.api_keys.changes import KEYS_CHANGED, TEMPLATES_CHANGED
from agentmark_gateway.api_keys.last_used import LastUsedRecorder
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.errors import Unauthorized
from agentmark_gateway.netaccess import Address, Allowlist
from agentmark_gateway.permissions.catalog import resolve_permissions

log = logging.getLogger(__name__)

NOT_AUTHORIZED = "Not authorized"


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


def parse_authorization(header: str | None) -> str:
    """The raw key from ``Authorization: <key>`` or ``Authorization: Bearer <key>``."""
    if not header:
        raise Unauthorized("Missing auth header")
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value


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


class KeyVerifier:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        pepper: bytes,
        last_used: LastUsedRecorder,
        cache_size: int = 10_000,
        cache_ttl: float = 30.0,
        negative_cache_size: int = 10_000,
        negative_cache_ttl: float = 5.0,
        on_app_change: Callable[[str | None], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._pepper = pepper
        self._last_used = last_used
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

    async def verify(
        self,
        authorization: str | None,
        app_id: str | None,
        client_address: Callable[[], Address | None] | None = None,
    ) -> VerifiedKey:
        """``client_address`` is called only for a key with an allowlist."""
        key = self.verify_known(authorization, app_id, client_address)
        if key is not None:
            return key
        # Only the database can tell. verify_known has vetted the value, so
        # parsing it again cannot fail (and a miss is rare enough to pay twice).
        raw = parse_authorization(authorization)
        key = await self._load_once(self._cache_id(raw), raw)
        if key is None:
            raise Unauthorized(NOT_AUTHORIZED)
        return self._accept(key, app_id, client_address)

    def verify_known(
        self,
        authorization: str | None,
        app_id: str | None,
        client_address: Callable[[], Address | None] | None = None,
    ) -> VerifiedKey | None:
        """The verdict when this process knows it without the database: the key,
        or ``Unauthorized`` raised; None when the key must be looked up.

        Synchronous, so the hot path pays for no coroutine on a cache hit.
        """
        raw = parse_authorization(authorization)
        if not app_id:
            raise Unauthorized("Missing app id")
        if len(raw) != keygen.KEY_LENGTH:
            raise Unauthorized(NOT_AUTHORIZED)
        cached_as = self._cache_id(raw)
        key = self._found.get(cached_as)
        if key is None:
            if self._unknown.get(cached_as) or not keygen.is_well_formed(raw):
                raise Unauthorized(NOT_AUTHORIZED)
            return None
        return self._accept(key, app_id, client_address)

    def _accept(
        self,
        key: VerifiedKey,
        app_id: str | None,
        client_address: Callable[[], Address | None] | None,
    ) -> VerifiedKey:
        """The checks of a found key: expiry, app, allowlist; then last-used."""
        if key.expires_at is not None and key.expires_at <= time.time():
            raise Unauthorized(NOT_AUTHORIZED)
        if key.app_id != app_id:
            raise Unauthorized(NOT_AUTHORIZED)
        if key.allowlist is not None:
            address = client_address() if client_address is not None else None
            if not key.allowlist.allows(address):
                # The same answer as an unknown key: nothing tells a caller
                # elsewhere that the key itself is good.
                raise Unauthorized(NOT_AUTHORIZED)
        self._last_used.record(key.id)
        return key

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
