"""Rate limits per key and per app, in requests per minute.

How counting works
------------------
Each process decides every request from counts it holds in a dict
(``RateLimiter``): fixed windows aligned to the clock, only admitted requests
counted, the dict cleared when a window ends (so it holds the keys and apps
active in one window, capped by ``max_buckets``). No request waits on a
database or a network: the check is a few dict operations.

Where the counts are shared (``rate_limit_store``)
-------------------------------------------------
``memory``
    This process's counts are the whole truth. Exact, free, and right for one
    process (the SQLite default). With N processes each would admit the full
    limit, so a key could make N times as many requests.
``database``
    Every ``rate_limit_sync_seconds`` (default 0.2 s) each process adds the
    counts it admitted since the last sync to ``rate_limit_counters`` (one
    ``INSERT ... ON CONFLICT DO UPDATE`` for all its buckets) and reads back the
    totals of all processes. Decisions use those totals plus the local counts
    since. The price is a small tolerance: in the moments between syncs, other
    processes' newest requests are not yet seen, so across N processes a key can
    exceed its limit by about (N-1) x its request rate x the sync interval (a
    key sending 50 requests a second through 2 processes: about 10 requests
    over). The gain: no request ever waits on the database, the database sees
    at most a few statements a second per process, not one per request, and
    nothing besides PostgreSQL is needed. The default with PostgreSQL.
``redis``
    The same batched exchange against Redis (``INCRBY`` and ``EXPIRE`` in one
    pipeline per sync), for deployments that would rather keep this traffic off
    PostgreSQL. Same tolerance, same hot path. Chosen automatically when
    ``AGENTMARK_REDIS_URL`` is set.

If the store is unreachable, each process keeps counting locally (the limit
becomes per process) and catches up when it answers again: a rate limiter
should not turn a database hiccup into refused requests.

Windows are fixed, not sliding: a client can spend one window's budget at its
very end and the next one's at the very start (at most twice the limit within
a few seconds around the boundary). In exchange the counts are plain integers
that several processes can add up, the headers are exact
(``X-RateLimit-Reset`` is the window's end as Unix seconds), and a window's
counts are thrown away whole when it ends.
"""

from agentmark_gateway.ratelimit.headers import (
    SCOPE_KEY,
    RateLimitHeadersMiddleware,
    with_rate_limit_headers,
)
from agentmark_gateway.ratelimit.limiter import Decision, RateLimiter, SharedStore
from agentmark_gateway.ratelimit.setup import build_limiter

__all__ = [
    "SCOPE_KEY",
    "Decision",
    "RateLimitHeadersMiddleware",
    "RateLimiter",
    "SharedStore",
    "build_limiter",
    "with_rate_limit_headers",
]
