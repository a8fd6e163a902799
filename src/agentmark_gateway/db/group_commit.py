"""Group commit: one writer per database in a process, one transaction for many requests.

A write request of the SDK path (spans, scores) used to pay a session, a
connection, a transaction and a commit for a few rows: a score cost the server
as much as twenty spans inside an ingest. Here the request prepares its rows
(decoded and validated, so a bad body fails before it waits), hands them to the
process's writer and waits. The writer takes the rows of every request waiting
at that moment into one transaction, commits, and only then answers each
request: an acknowledgement always follows its commit.

Failures stay with their owners:

- A transaction that fails because the database cannot serve (see
  ``error_handlers.is_outage``) fails every request of it with 503 and
  ``Retry-After``.
- A transaction that fails for any other reason (a constraint, a value the
  database refuses) is tried again one request at a time, so only the request
  whose rows are at fault gets its error, the same one it would have got alone.
- The queue is bounded: a request that would overfill it is refused at once with
  503 and ``Retry-After`` instead of waiting behind a database that is not
  keeping up (and holding its body in memory meanwhile).
- On shutdown the writer is drained: every waiting request is written and
  answered; new ones are refused with 503.

Row writers take a session and the row batches of several requests and write
them without committing. They run in a fixed order (by name) in every process,
so two processes' transactions lock rows in the same order on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway.error_handlers import RETRY_AFTER_SECONDS, is_outage, note_outage
from agentmark_gateway.errors import ServiceUnavailable
from agentmark_gateway.observability.metrics import WRITE_WAIT

log = logging.getLogger(__name__)

RowWriter = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]

# Bounds of what waits: requests and rows (a span or a score is one row). At the
# gateway's body limit a request holds at most a few MB of rows.
MAX_WAITING_REQUESTS = 1024
MAX_WAITING_ROWS = 50_000
# Rows one transaction takes at most: a long transaction holds SQLite's write lock
# (and delays every request in it) as long as it runs.
MAX_ROWS_PER_COMMIT = 10_000
# A full queue empties within one or two commits: a short wait is enough.
QUEUE_FULL_RETRY_AFTER = "1"
# How long shutdown waits for the writer to store what is waiting.
DRAIN_SECONDS = 10.0


class QueueFull(ServiceUnavailable):
    message = "The gateway is writing as fast as the database allows; try again shortly"


@dataclass(eq=False)
class _Request:
    write: RowWriter
    rows: Any
    size: int
    done: asyncio.Future[None]
    queued_at: float = field(default_factory=time.monotonic)


class GroupCommit:
    """The writer of one database in this process; ``await write(...)`` returns after the commit."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_waiting_requests: int = MAX_WAITING_REQUESTS,
        max_waiting_rows: int = MAX_WAITING_ROWS,
        max_rows_per_commit: int = MAX_ROWS_PER_COMMIT,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.max_waiting_requests = max_waiting_requests
        self.max_waiting_rows = max_waiting_rows
        self.max_rows_per_commit = max_rows_per_commit
        self._waiting: deque[_Request] = deque()
        self._waiting_rows = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # For /metrics: the last transaction's size and how long its oldest request waited.
        self.last_commit_requests = 0
        self.last_wait_seconds = 0.0

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken into a transaction."""
        return len(self._waiting)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="group-commit")

    async def write(self, write: RowWriter, rows: Any, size: int) -> None:
        """Queues one request's rows for ``write``; returns once they are committed.

        Raises 503 (``ServiceUnavailable``) when the queue is full, the database
        is out, or the process is stopping; any other error is this request's own.
        """
        if self._closing:
            raise ServiceUnavailable(
                "The gateway is shutting down; try again shortly",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        if self._waiting and (
            len(self._waiting) >= self.max_waiting_requests
            or self._waiting_rows + size > self.max_waiting_rows
        ):
            raise QueueFull(headers={"Retry-After": QUEUE_FULL_RETRY_AFTER})
        self.start()  # started with the gateway; here too for code that never started it
        request = _Request(write, rows, size, asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        self._waiting_rows += size
        self._wake.set()
        await request.done

    async def close(self, within: float = DRAIN_SECONDS) -> None:
        """Refuses new writes, stores and answers every waiting one, then stops the writer."""
        self._closing = True
        self._wake.set()
        task = self._task
        if task is None:
            self._fail_waiting()
            return
        done, _ = await asyncio.wait([task], timeout=within)
        if not done:
            log.warning("the writer did not finish in %.0f s; failing what waits", within)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_waiting()

    # -- the writer ---------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            taken = self._take()
            try:
                await self._commit(taken)
            except BaseException:
                # Cancelled mid-transaction (a shutdown that ran out of time): nobody
                # may wait for an answer that will not come.
                _fail(taken, _stopping)
                raise

    def _take(self) -> list[_Request]:
        """The oldest waiting requests, up to a transaction's worth of rows (at least one)."""
        taken: list[_Request] = []
        rows = 0
        now = time.monotonic()
        while self._waiting and (
            not taken or rows + self._waiting[0].size <= self.max_rows_per_commit
        ):
            request = self._waiting.popleft()
            self._waiting_rows -= request.size
            if request.done.done():  # its caller went away before it was written
                continue
            taken.append(request)
            rows += request.size
            WRITE_WAIT.observe(now - request.queued_at)
        if taken:
            self.last_commit_requests = len(taken)
            self.last_wait_seconds = now - taken[0].queued_at
        return taken

    async def _commit(self, taken: list[_Request]) -> None:
        if not taken:
            return
        try:
            await self._transaction(taken)
        except Exception as exc:
            if is_outage(exc):
                note_outage(exc)
                _fail(taken, partial(_unavailable, exc))
            elif len(taken) == 1:
                _reject(taken[0], exc)
            else:
                await self._one_by_one(taken)
            return
        _acknowledge(taken)

    async def _one_by_one(self, taken: list[_Request]) -> None:
        """Each request in a transaction of its own, so only the faulty one fails."""
        for index, request in enumerate(taken):
            try:
                await self._transaction([request])
            except Exception as exc:
                if is_outage(exc):
                    note_outage(exc)
                    _fail(taken[index:], partial(_unavailable, exc))
                    return
                _reject(request, exc)
            else:
                _acknowledge([request])

    async def _transaction(self, taken: list[_Request]) -> None:
        groups: dict[RowWriter, list[Any]] = {}
        for request in taken:
            groups.setdefault(request.write, []).append(request.rows)
        async with self._sessionmaker() as session:
            for write in sorted(groups, key=_name):
                await write(session, groups[write])
            await session.commit()

    def _fail_waiting(self) -> None:
        waiting = list(self._waiting)
        self._waiting.clear()
        self._waiting_rows = 0
        _fail(waiting, _stopping)


def _name(write: RowWriter) -> str:
    qualname = getattr(write, "__qualname__", type(write).__qualname__)
    return f"{write.__module__}.{qualname}"


def _acknowledge(requests: list[_Request]) -> None:
    for request in requests:
        if not request.done.done():
            request.done.set_result(None)


def _reject(request: _Request, error: BaseException) -> None:
    if not request.done.done():
        request.done.set_exception(error)


def _fail(requests: list[_Request], error: Callable[[], BaseException]) -> None:
    # An error of its own for each: one raised in several tasks would gather
    # all their tracebacks.
    for request in requests:
        if not request.done.done():
            request.done.set_exception(error())


def _unavailable(cause: BaseException) -> ServiceUnavailable:
    error = ServiceUnavailable(headers={"Retry-After": RETRY_AFTER_SECONDS})
    error.__cause__ = cause
    return error


def _stopping() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway is shutting down; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
