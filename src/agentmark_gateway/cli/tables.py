"""Plain-text tables for terminal output (no colour codes, easy to grep)."""

from __future__ import annotations

from collections.abc import Sequence

from agentmark_gateway.controls import escape_controls


def cell(value: object) -> str:
    """A value as printed, controls escaped: a stored name cannot drive the terminal."""
    return "" if value is None else escape_controls(str(value))


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[cell(h) for h in headers]] + [[cell(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
