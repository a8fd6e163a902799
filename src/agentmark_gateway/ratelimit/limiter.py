"""The per-request decision: admit or refuse, from counts this process holds in memory.

Windows are fixed and aligned to the clock (window number = ``int(now //
window_seconds)``), so every process agrees on which window a request falls in
without talking to the others, and a counter for a past window can be dropped
whole. Only admitted requests count: a key refused for its own limit does not
use up its app's budget, and a key refused for the app's limit does not use up
its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from agentmark_gateway.api_keys.verify import VerifiedKey

log = logging.getLogger(__name__)

__all__ = ["Decision", "RateLimiter", "SharedStore"]


# Not frozen: a frozen dataclass costs four times as much to build, and this is
# built on every limited request.
@dataclass(slots=True)
class Decision:
    """What the limiter answered for one request, and the headers that say so."""

    allowed: bool
    limit: int
    remaining: int
    # Unix time (seconds) at which the current window ends and counts restart.
    reset_at: float
    # Whole seconds until then, at least 1 (computed for refusals only).
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class SharedStore(Protocol):
    """Where several processes add up their counts (the database or Redis)."""

    async def exchange(
        self, window_id: int, increments: Mapping[str, int], buckets: Collection[str]
    ) -> dict[str, int]:
        """Add ``increments`` to the window's totals; return the totals of ``buckets``."""
        ...

    async def forget_before(self, window_id: int) -> None:
        """Drop the counts of windows before ``window_id``."""
        ...

    async def close(self) -> None: ...


class RateLimiter:
    """Counts requests per key and per app in fixed windows.

    Without a store the counts of this process are the whole truth. With a
    store, ``sync()`` (run every few hundred milliseconds by ``run()``) sends the
    counts admitted here since the last sync and reads back every process's
    totals; between syncs a decision uses those totals plus the local counts, so
    the request path never waits on the network.
    """

    def __init__(
        self,
        *,
        per_key: int = 0,
        per_app: int = 0,
        window_seconds: float = 60.0,
        store: SharedStore | None = None,
        clock: Callable[[], float] = time.time,
        max_buckets: int = 100_000,
    ) -> None:
        self.per_key = per_key
        self.per_app = per_app
        self.window_seconds = window_seconds
        self.store = store
        # Tests swap the clock to step through windows without sleeping.
        self.clock = clock
        self.max_buckets = max_buckets
        self._window_id = -1
        # Admitted here and not yet sent (with no store: everything admitted here).
        self._local: dict[str, int] = {}
        # Sent by a sync that has not answered yet.
        self._sending: dict[str, int] = {}
        # Every process's totals as the last sync read them.
        self._shared: dict[str, int] = {}
        self._sync_failing = False
        self._cleaned_for = -1
        # One exchange at a time: an overlapping one would hide the counts in flight.
        self._sync_lock = asyncio.Lock()

    def _roll(self, window_id: int) -> None:
        self._window_id = window_id
        self._local = {}
        self._sending = {}
        self._shared = {}

    def _used(self, bucket: str) -> int:
        used = self._local.get(bucket, 0)
        if self.store is not None:
            used += self._shared.get(bucket, 0) + self._sending.get(bucket, 0)
        return used

    def _count(self, bucket: str) -> None:
        local = self._local
        if bucket not in local and len(local) >= self.max_buckets:
            # Forget the bucket seen first in this window: a memory bound for a
            # flood of distinct keys, at worst letting one key start over.
            del local[next(iter(local))]
        local[bucket] = local.get(bucket, 0) + 1

    def check(self, key: VerifiedKey) -> Decision | None:
        """Admit (and count) or refuse one request of ``key``; None when no limit applies."""
        key_limit = key.rate_limit_per_minute or self.per_key
        app_limit = self.per_app
        if not key_limit and not app_limit:
            return None
        now = self.clock()
        window_id = int(now // self.window_seconds)
        if window_id != self._window_id:
            self._roll(window_id)
        reset_at = (window_id + 1) * self.window_seconds

        key_bucket = f"key:{key.id}"
        app_bucket = f"app:{key.app_id}"
        key_left = key_limit - self._used(key_bucket) if key_limit else 0
        app_left = app_limit - self._used(app_bucket) if app_limit else 0
        if key_limit and key_left <= 0:
            return Decision(False, key_limit, 0, reset_at, max(1, math.ceil(reset_at - now)))
        if app_limit and app_left <= 0:
            return Decision(False, app_limit, 0, reset_at, max(1, math.ceil(reset_at - now)))
        if key_limit:
            self._count(key_bucket)
        if app_limit:
            self._count(app_bucket)
        # Report the limit closer to running out: it is the one a client meets first.
        if key_limit and (not app_limit or key_left <= app_left):
            return Decision(True, key_limit, key_left - 1, reset_at)
        return Decision(True, app_limit, app_left - 1, reset_at)

    # -- sharing with other processes -----------------------------------------

    async def sync(self) -> None:
        """Send this process's new counts to the store and read everyone's totals."""
        if self.store is None:
            return
        async with self._sync_lock:
            await self._sync(self.store)

    async def _sync(self, store: SharedStore) -> None:
        current = int(self.clock() // self.window_seconds)
        if current != self._window_id:
            self._roll(current)
        if self._cleaned_for != current:
            # Once a window per process: drop what no process will read again.
            self._cleaned_for = current
            await store.forget_before(current - 1)
        if not self._local and not self._shared:
            return
        window_id = self._window_id
        sending, self._local = self._local, {}
        self._sending = sending
        buckets = set(self._shared) | set(sending)
        try:
            totals = await store.exchange(window_id, sending, buckets)
        except BaseException:
            # Keep the counts for the next attempt (unless the window ended meanwhile).
            if self._window_id == window_id:
                for bucket, count in sending.items():
                    self._local[bucket] = self._local.get(bucket, 0) + count
                self._sending = {}
            raise
        if self._window_id == window_id:
            self._shared.update(totals)
            self._sending = {}

    async def run(self, interval: float) -> None:
        """Sync forever (a background task of each server process with a store)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception:
                # Counting goes on locally; the limit is per process until the
                # store answers again. Say so once, not every interval.
                if not self._sync_failing:
                    log.warning("rate limit store unreachable; counting per process for now")
                self._sync_failing = True
            else:
                if self._sync_failing:
                    log.info("rate limit store reachable again")
                self._sync_failing = False

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
