"""JSON that both databases can store: parsed strictly, checked before it reaches an insert.

PostgreSQL's JSONB refuses ``\\u0000`` and ``NaN``, and no driver encodes a lone
surrogate (``"\\ud800"`` is valid JSON text). Catching them here makes them 400s
on SQLite and PostgreSQL alike, instead of 500s at commit time on one of them.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """``json.loads`` without NaN/Infinity; every failure is a ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None


# Deeper JSON could be stored but never served: pydantic's encoder, which writes the
# API's answers, gives up at 255 levels (the answer's own envelope takes a few).
MAX_JSON_DEPTH = 128


def check_storable(value: Any) -> Any:
    """``value`` unchanged, or ``ValueError`` when a database could not store it (or the
    API could not send it back).

    Iterative, so a deeply nested value cannot exhaust the stack.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("numbers must be finite (no NaN or Infinity)")
        elif isinstance(item, dict | list):
            check_depth(depth)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def check_depth(depth: int) -> None:
    if depth >= MAX_JSON_DEPTH:
        raise ValueError(f"JSON values must not nest deeper than {MAX_JSON_DEPTH} levels")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("strings must not contain NUL characters (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must be valid Unicode (no lone surrogates)") from None


def dumps_line(value: Any) -> bytes:
    """One compact NDJSON line; ``json.dumps`` escapes newlines inside strings."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
