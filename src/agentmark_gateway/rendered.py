"""An answer rendered once and sent as bytes many times."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response as it left: its headers (raw ASGI pairs) and body."""

    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
