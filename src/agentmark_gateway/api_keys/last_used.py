"""Last-used times: noted in memory per request, written in one batch per interval."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentmark_gateway import periodic
from agentmark_gateway.api_keys.models import ApiKey

log = logging.getLogger(__name__)


class LastUsedRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._pending: dict[str, float] = {}

    def record(self, key_id: str) -> None:
        self._pending[key_id] = time.time()

    async def flush(self) -> int:
        """Write what was noted since the last flush; returns how many keys were updated."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        try:
            async with self._sessionmaker() as session, session.begin():
                for key_id, seen in pending.items():
                    moment = datetime.fromtimestamp(seen, UTC)
                    await session.execute(
                        update(ApiKey)
                        .where(
                            ApiKey.id == key_id,
                            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < moment),
                        )
                        .values(last_used_at=moment)
                        .execution_options(synchronize_session=False)
                    )
        except Exception:
            # Keep the times for the next try rather than lose them.
            for key_id, seen in pending.items():
                self._pending[key_id] = max(seen, self._pending.get(key_id, 0.0))
            raise
        return len(pending)

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds (a background task of each server process)."""
        failed = "could not write last-used times; will retry"
        await periodic.every(interval, self.flush, log=log, failed=failed)
