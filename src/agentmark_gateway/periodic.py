"""Work a process does on a timer for as long as it serves (batched writes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(
    interval: float, work: Callable[[], Awaitable[object]], *, log: logging.Logger, failed: str
) -> None:
    """Run ``work`` every ``interval`` seconds; a failure is logged (``failed``) and the
    next run tries again (the batched writers keep what they could not write)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception:
            log.warning(failed)
