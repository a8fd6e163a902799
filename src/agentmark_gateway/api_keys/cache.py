"""A small bounded TTL map: the verified-key and unknown-key caches of one process."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Least-recently-inserted eviction at ``maxsize``; entries expire after ``ttl`` seconds.

    Single-threaded use on the event loop: no locks needed.
    """

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._data: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        deadline, value = item
        if deadline < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def set(self, key: str, value: V, ttl: float | None = None) -> None:
        self._data.pop(key, None)
        self._data[key] = (time.monotonic() + (self.ttl if ttl is None else ttl), value)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
