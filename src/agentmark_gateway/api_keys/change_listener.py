"""On PostgreSQL, hear of other processes' key and template changes as they commit.

Each ``key_changes`` row is announced with ``NOTIFY`` in its own transaction
(``changes.announce_change``). Every process LISTENs on a connection of its own,
outside the pool, and on a notice wakes its change poll at once: what a change
means stays in one place (``changes.ChangeFeed.poll``); a notice only says
"look now". The poll on a timer stays as the fallback: it catches whatever was
committed while this connection was down (it is reopened with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from agentmark_gateway.api_keys.changes import CHANGES_CHANNEL

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.1
LAST_RETRY_SECONDS = 5.0
# How often a quiet connection is checked: one lost without a word (a host or
# network gone, no reset) would otherwise wait for notices that never come.
CHECK_EVERY_SECONDS = 15.0
APPLICATION_NAME = "agentmark-gateway change listener"
# Options of SQLAlchemy's asyncpg dialect that asyncpg.connect does not take.
_DIALECT_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")


class ChangeListener:
    """Calls ``on_change`` for every notice on the channel, and after each reconnection."""

    def __init__(self, engine: AsyncEngine, on_change: Callable[[], None], *, timeout: float):
        self._engine = engine
        self._on_change = on_change
        self._timeout = timeout

    async def run(self) -> None:
        """Listen forever (a background task of each server process on PostgreSQL)."""
        retry_in = FIRST_RETRY_SECONDS
        lost = False
        while True:
            began = time.monotonic()
            try:
                connection = await asyncpg.connect(**self._connect_options())
            except Exception:  # the server away, refusing or unreachable: try again later
                connection = None
            if connection is not None:
                try:
                    await connection.add_listener(CHANGES_CHANNEL, lambda *_: self._on_change())
                    if lost:
                        log.info("listening for key changes again")
                        # What was committed while no one listened is read by a poll now.
                        self._on_change()
                    lost = False
                    await self._until_lost(connection)
                except Exception:  # the connection broke: open another
                    log.debug("the key change listener's connection failed", exc_info=True)
                finally:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=self._timeout))
            if not lost:
                log.warning("not listening for key changes; polling alone until it can again")
            lost = True
            if time.monotonic() - began > LAST_RETRY_SECONDS:
                retry_in = FIRST_RETRY_SECONDS  # it had been up a while: a new outage
            await asyncio.sleep(retry_in)
            retry_in = min(retry_in * 2, LAST_RETRY_SECONDS)

    async def _until_lost(self, connection: asyncpg.Connection) -> None:
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_close(_connection: object) -> None:
            if not closed.done():
                closed.set_result(None)

        connection.add_termination_listener(on_close)
        while not closed.done():
            # asyncio.wait neither cancels ``closed`` nor, unlike wait_for on
            # Python 3.11, drops a cancellation of this task (the server stopping).
            await asyncio.wait([closed], timeout=CHECK_EVERY_SECONDS)
            if not closed.done():
                await connection.fetchval("SELECT 1", timeout=self._timeout)

    def _connect_options(self) -> dict[str, Any]:
        """The pool's own connection options (host, user, TLS, ...), as asyncpg takes them."""
        _args, options = self._engine.dialect.create_connect_args(self._engine.url)
        for name in _DIALECT_OPTIONS:
            options.pop(name, None)
        options.setdefault("server_settings", {"application_name": APPLICATION_NAME})
        return {**options, "timeout": self._timeout}
