"""Every request's id: the client's ``X-Request-Id`` when it is sane, else a new one.

The id lives in a context variable while the request is handled, so every log
line of that request carries it (``logs.RequestIdFilter``), and it is echoed in
the answer's ``X-Request-Id`` header. It is kept as the header's bytes: most
requests write no log line, and every one sends the header.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Iterable
from contextvars import ContextVar

__all__ = ["HEADER", "MAX_LENGTH", "REQUEST_ID", "current", "from_headers", "new_id"]

HEADER = b"x-request-id"
MAX_LENGTH = 128

# The id of the request being handled; None outside of one (startup, background tasks).
REQUEST_ID: ContextVar[bytes | None] = ContextVar("agentmark_request_id", default=None)

# Visible ASCII only: an id ends up in log lines and headers, where a control
# character, a space or a newline could forge or split a line.
_ACCEPTABLE = re.compile(rb"[!-~]{1,%d}" % MAX_LENGTH).fullmatch


def _fresh_counter() -> tuple[bytes, itertools.count[int]]:
    return secrets.token_hex(8).encode(), itertools.count(1)


# A random prefix per process and a counter: unique without a syscall per request
# (os.urandom costs more than the rest of the id handling together).
_prefix, _counter = _fresh_counter()


def _after_fork() -> None:
    global _prefix, _counter
    _prefix, _counter = _fresh_counter()


os.register_at_fork(after_in_child=_after_fork)


def new_id() -> bytes:
    return _prefix + b"%08x" % next(_counter)


def current() -> str | None:
    """The id of the request being handled, or None."""
    found = REQUEST_ID.get()
    return None if found is None else found.decode("ascii")


def from_headers(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The first ``X-Request-Id`` when it is visible ASCII of at most 128 characters,
    else a new id."""
    for name, value in headers:
        if name == HEADER:
            if _ACCEPTABLE(value):
                return value
            break
    return new_id()
