"""Answers to ``GET /v1/templates`` this process has already rendered.

The SDKs fetch the same few templates over and over, and a template changes
only when someone publishes it. So the first answer for an app and a query
string is kept, as the exact bytes sent, and ``KeyGate`` sends them again to
the next caller whose key may read that app's templates: no routing, no
database, no rendering.

Correct while fast:
- An entry is keyed by the app and the raw query string. Only a 200 the
  handler produced is kept, so the same query string gets the same answer
  (path validation, unknown parameters and the like were all decided for it).
- Publishing or deleting a template forgets the app's entries in this process
  at once, and in every other process when it reads ``key_changes``
  (``KEYS_CHANGED``'s sibling ``TEMPLATES_CHANGED``): as the row commits on
  PostgreSQL (pushed), within a poll on SQLite; deleting an app forgets them too.
- A render that raced a change is not kept: ``generation`` moves on every
  change, and ``put`` ignores an answer rendered under an older one.
- Entries live ``ttl`` seconds at most (a backstop, not the mechanism), and
  the whole cache holds at most ``max_bytes`` of bodies, least recently
  stored first out; a body larger than an eighth of that is never kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from agentmark_gateway.rendered import Rendered

# The route whose answers this cache holds; KeyGate sends a hit from in front of the framework.
ANSWERED_ROUTE = ("GET", "/v1/templates")


class TemplateCache:
    """Bounded, per process, used from the event loop only (no locks)."""

    def __init__(self, *, max_bytes: int, ttl: float) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.generation = 0
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, Rendered]] = OrderedDict()
        self._bytes = 0

    def get(self, app_id: str, query: bytes) -> Rendered | None:
        entry = self._entries.get((app_id, query))
        if entry is None:
            return None
        deadline, rendered = entry
        if deadline < time.monotonic():
            self._drop((app_id, query))
            return None
        return rendered

    def put(self, app_id: str, query: bytes, rendered: Rendered, generation: int) -> None:
        """Keep ``rendered`` unless a change came after its render began (``generation``)."""
        size = len(rendered.body)
        if generation != self.generation or self.max_bytes <= 0 or size > self.max_bytes // 8:
            return
        key = (app_id, query)
        self._drop(key)
        self._entries[key] = (time.monotonic() + self.ttl, rendered)
        self._bytes += size
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def forget_app(self, app_id: str) -> None:
        self.generation += 1
        for key in [key for key in self._entries if key[0] == app_id]:
            self._drop(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: tuple[str, bytes]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1].body)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
