"""The change feed: how every gateway process hears that a key, an app or an
app's templates changed, so that no cache serves what was changed.

A change is one ``KeyChange`` row, added by the service that makes the change
in the change's own transaction (so it exists only if the change commits). It
asks each process to forget what it names:

- ``kind`` "keys" with ``key_id``: that key (an edit, delete or roll);
- ``kind`` "keys" with ``app_id`` only: every key of the app and its cached
  data (an app deletion);
- ``kind`` "templates": the app's cached template answers (a publish or delete).

What forgetting means for the caches is ``KeyLookup.apply_change``
(api_keys/verify.py). It is called:

- in the process that commits the row, the moment it commits
  (``apply_on_commit``), whoever opened the session: no router, page or
  command has to remember;
- in every other process by ``ChangeFeed``, which polls the table and which,
  on PostgreSQL, each row wakes as it commits (``announce_change``, heard by
  api_keys/change_listener.py). Rows older than an hour are pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, Integer, String, delete, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Mapper, Session, UOWTransaction, mapped_column

from agentmark_gateway.db.base import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

KEYS_CHANGED = "keys"  # the named key, or every key of the named app
TEMPLATES_CHANGED = "templates"  # the named app's cached template answers
# Never written: applied while the feed cannot be read, since anything may have
# changed meanwhile (any kind a process does not know is read the same way).
ANYTHING_CHANGED = "anything"

# How far back each poll looks for changes that committed out of id order.
CHANGE_LOOKBACK = timedelta(seconds=10)
# Change rows older than this are deleted (every process has long applied them).
CHANGE_RETENTION = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 600.0

# PostgreSQL channel on which key_changes rows are announced (api_keys/change_listener.py).
CHANGES_CHANNEL = "agentmark_key_changes"

# Keys of ``Session.info``: what applies a change in this process (set on a
# process's sessionmaker), and the changes a session flushed but has not committed.
_APPLY = "agentmark_apply_change"
_PENDING = "agentmark_pending_changes"


class ApplyChange(Protocol):
    def __call__(self, kind: str, *, key_id: str | None, app_id: str | None) -> None: ...


class KeyChange(Base):
    """One change that every process's caches must hear of (see the module)."""

    __tablename__ = "key_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    app_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default=KEYS_CHANGED, server_default=KEYS_CHANGED)
    # Each poll reads the last seconds of rows by this column.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def apply_on_commit(sessionmaker: async_sessionmaker[AsyncSession], apply: ApplyChange) -> None:
    """Every session of ``sessionmaker`` applies its changes with ``apply`` as it commits."""
    sessionmaker.configure(info={_APPLY: apply})


@event.listens_for(KeyChange, "after_insert")
def announce_change(_mapper: Mapper[KeyChange], connection: Connection, _row: KeyChange) -> None:
    """Every row a session adds (how each change is recorded) wakes every process's poll.

    Sent in the row's own transaction, so PostgreSQL delivers it when the row
    commits (never for a rolled-back one); the notices of one transaction,
    being identical, arrive as one. SQLite cannot push: it is polled only.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"NOTIFY {CHANGES_CHANNEL}"))


@event.listens_for(Session, "after_flush")
def _hold_flushed_changes(session: Session, _flush: UOWTransaction) -> None:
    if _APPLY not in session.info:
        return
    # Read now: after the commit the rows may be expired, and loading them then
    # would need the database again.
    session.info.setdefault(_PENDING, []).extend(
        (row.kind, row.key_id, row.app_id) for row in session.new if isinstance(row, KeyChange)
    )


@event.listens_for(Session, "after_commit")
def _apply_committed_changes(session: Session) -> None:
    apply = session.info.get(_APPLY)
    pending = session.info.pop(_PENDING, None)
    if apply is None or not pending:
        return
    for kind, key_id, app_id in pending:
        apply(kind, key_id=key_id, app_id=app_id)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_changes(session: Session) -> None:
    session.info.pop(_PENDING, None)


class ChangeFeed:
    """Applies, in this process, the changes other processes commit."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], apply: ApplyChange):
        self._sessionmaker = sessionmaker
        self._apply = apply
        self._last_change_id = 0
        # Changes applied within the lookback window, so none is applied twice.
        self._recent_changes: dict[int, datetime] = {}
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        self._failing = False
        # Set when a change was announced (PostgreSQL): poll now, not at the next tick.
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Begin after the newest change: this process's caches are empty anyway."""
        async with self._sessionmaker() as session:
            self._last_change_id = await session.scalar(select(func.max(KeyChange.id))) or 0

    async def poll(self) -> int:
        """Apply the changes committed since the last poll; returns how many were new.

        Ids come from a sequence, but on PostgreSQL two transactions can commit
        out of id order: a change with a lower id may become visible after a
        higher one was read. So each poll also looks back over recent rows and
        applies any it has not seen yet.
        """
        since = utcnow() - CHANGE_LOOKBACK
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        KeyChange.id,
                        KeyChange.kind,
                        KeyChange.key_id,
                        KeyChange.app_id,
                        KeyChange.created_at,
                    )
                    .where((KeyChange.id > self._last_change_id) | (KeyChange.created_at >= since))
                    .order_by(KeyChange.id)
                )
            ).all()
        fresh = 0
        for change_id, kind, key_id, app_id, created_at in rows:
            if change_id in self._recent_changes:
                continue
            self._recent_changes[change_id] = created_at
            self._apply(kind, key_id=key_id, app_id=app_id)
            self._last_change_id = max(self._last_change_id, change_id)
            fresh += 1
        for change_id, created_at in list(self._recent_changes.items()):
            if created_at < since:
                del self._recent_changes[change_id]
        return fresh

    async def prune(self) -> int:
        """Delete change rows every process has long applied; returns how many."""
        async with self._sessionmaker() as session:
            result = await session.execute(
                delete(KeyChange).where(KeyChange.created_at < utcnow() - CHANGE_RETENTION)
            )
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    def wake(self) -> None:
        """Poll at once: another process announced a change (api_keys/change_listener.py)."""
        self._wake.set()

    async def watch(self, interval: float) -> None:
        """Poll forever (a background task of each server process): every
        ``interval`` seconds, and whenever ``wake`` is called."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
            # cancellation that lands as the event is set, and the server's
            # shutdown then waits for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            # Cleared before the poll: a notice arriving during it brings another.
            self._wake.clear()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                try:
                    await self.prune()
                except Exception:  # a busy or absent database: next time
                    log.info("could not prune old key changes", exc_info=True)
            try:
                await self.poll()
            except Exception:  # the database may be briefly away; keep watching
                if not self._failing:
                    # Once per outage, not once per poll.
                    log.warning("could not read key changes; the caches are cleared until it can")
                self._failing = True
                self._apply(ANYTHING_CHANGED, key_id=None, app_id=None)
            else:
                if self._failing:
                    log.info("reading key changes again")
                self._failing = False
