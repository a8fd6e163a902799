"""Usage per key, counted in memory on the hot path and written in batches.

``observe(scope, status)`` is called once per answer of a request that named a
known key (the key check leaves it in the scope as ``KEY_SEEN``): a few dict
operations, no database write. ``flush`` writes one ``KeyUsage`` row per key and
minute counted since the last flush; every process writes its own rows, and a
read adds them all up, so counts are exact across processes once flushed.

What a request leaves in its scope for the count:

- ``KEY_SEEN`` (api_keys/authenticate.py): the key the request named, once found;
- ``PERMITTED`` / ``MISSING`` (permissions/enforce.py): the permissions its route
  required when they were held, or the first one missing (403);
- ``STORED`` (set by the ingest handlers through ``stored``): how many spans
  and scores it stored.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.types import Scope

from agentmark_gateway import periodic
from agentmark_gateway.api_keys.authenticate import KEY_SEEN
from agentmark_gateway.controls import escape_controls
from agentmark_gateway.netaccess import ClientAddressResolver
from agentmark_gateway.permissions.enforce import MISSING, PERMITTED
from agentmark_gateway.usage.models import MINUTE, KeyUsage
from agentmark_gateway.usage.totals import OUTCOMES

log = logging.getLogger(__name__)

STORED = "agentmark.stored"  # (spans, scores)
USER_AGENT = b"user-agent"
FORWARDED_FOR = b"x-forwarded-for"
MAX_USER_AGENT = 200


def stored(request: Request, *, spans: int = 0, scores: int = 0) -> None:
    """Note what an ingest request stored, for its key's counts."""
    request.scope[STORED] = (spans, scores)


def outcome_index(status: int) -> int:
    """Where ``status`` is counted: its index in ``OUTCOMES`` (the columns of a row)."""
    if status < 400:
        return 0
    if status == 401:
        return 2
    if status == 403:
        return 3
    if status == 429:
        return 4
    return 5 if status >= 500 else 1


# The same, looked up: this runs once per answer.
_OUTCOME_OF = [outcome_index(status) for status in range(600)]


class _Tally:
    """One key's counts in one minute, in this process, since the last flush."""

    __slots__ = (
        "app_id",
        "counts",
        "ends",
        "last",
        "minute",
        "refused",
        "scores",
        "seen",
        "sets",
        "spans",
    )

    def __init__(self, app_id: str, minute: int) -> None:
        self.app_id = app_id
        self.minute = minute
        self.ends = (minute + 1) * 60  # the first second of the next minute
        self.counts = [0] * len(OUTCOMES)
        self.sets: dict[tuple[str, ...], int] = {}
        self.refused: dict[str, int] = {}
        self.spans = 0
        self.scores = 0
        # The latest request: its client address and user agent are read from it
        # at flush time, not on the hot path.
        self.last: Scope = {"headers": []}
        self.seen = 0.0


class UsageCounter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client_addresses: ClientAddressResolver,
        *,
        enabled: bool = True,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client_addresses = client_addresses
        # When false the app hands ``observe`` to nobody (app.py): nothing is counted.
        self.enabled = enabled
        # Each key's tally of the current minute, and the minutes that ended since
        # the last flush.
        self._current: dict[str, _Tally] = {}
        self._ended: list[tuple[str, _Tally]] = []

    def observe(self, scope: Scope, status: int) -> None:
        """Count one answer (``status``) of a request, when it named a known key."""
        key = scope.get(KEY_SEEN)
        if key is None:
            return
        now = time.time()
        tally = self._current.get(key.id)
        if tally is None or now >= tally.ends:
            tally = self._open(key.id, key.app_id, int(now) // 60)
        tally.counts[_OUTCOME_OF[status] if 0 <= status < 600 else 5] += 1
        missing = scope.get(MISSING)
        if missing is None:
            permitted = scope.get(PERMITTED)
            if permitted is not None:
                sets = tally.sets
                sets[permitted] = sets.get(permitted, 0) + 1
        else:
            tally.refused[missing] = tally.refused.get(missing, 0) + 1
        rows = scope.get(STORED)
        if rows is not None:
            tally.spans += rows[0]
            tally.scores += rows[1]
        tally.last = scope
        tally.seen = now

    def _open(self, key_id: str, app_id: str, minute: int) -> _Tally:
        ended = self._current.get(key_id)
        if ended is not None:
            self._ended.append((key_id, ended))
        tally = self._current[key_id] = _Tally(app_id, minute)
        return tally

    async def flush(self) -> int:
        """Write what was counted since the last flush; returns how many rows."""
        if not self._current and not self._ended:
            return 0
        taken = [*self._ended, *self._current.items()]
        self._current, self._ended = {}, []
        try:
            async with self._sessionmaker() as session, session.begin():
                session.add_all(self._row(key_id, tally) for key_id, tally in taken)
        except Exception:
            # Keep the counts for the next try rather than lose them (as rows of their own).
            self._ended[:0] = taken
            raise
        return len(taken)

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds (a background task of each server process)."""
        failed = "could not write usage counts; will retry"
        await periodic.every(interval, self.flush, log=log, failed=failed)

    def _row(self, key_id: str, tally: _Tally) -> KeyUsage:
        headers = tally.last["headers"]
        client = tally.last.get("client")
        agent = next((value for name, value in headers if name == USER_AGENT), None)
        forwarded = [v.decode("latin-1") for n, v in headers if n == FORWARDED_FOR]
        address = self._client_addresses.resolve(client[0] if client else None, forwarded)
        user_agent = None if agent is None else escape_controls(agent.decode("latin-1"))
        return KeyUsage(
            app_id=tally.app_id,
            key_id=key_id,
            granularity=MINUTE,
            bucket_start=datetime.fromtimestamp(tally.minute * 60, UTC),
            **dict(zip(OUTCOMES, tally.counts, strict=True)),
            spans=tally.spans,
            scores=tally.scores,
            permission_sets={" ".join(s): n for s, n in tally.sets.items()},
            refused=dict(tally.refused),
            last_client_address=None if address is None else str(address)[:64],
            last_user_agent=(user_agent or "").strip()[:MAX_USER_AGENT] or None,
            last_seen_at=datetime.fromtimestamp(tally.seen, UTC),
        )
