"""How the data pages write durations, costs, token counts and message bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def duration(ms: float | None) -> str:
    """'840 ms', '1.25 s', '3 min 5 s': short enough for a table column."""
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def cost(usd: float | None) -> str:
    """Dollars with enough digits that a cheap call does not read as free."""
    if not usd:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.6f}".rstrip("0").rstrip(".")


def count(value: int | None) -> str:
    return "0" if not value else f"{value:,}"


@dataclass(frozen=True)
class Message:
    role: str
    text: str


def messages(text: str | None) -> list[Message] | None:
    """A chat input stored as JSON (``[{"role": ..., "content": ...}]``) as messages,
    so the page can show who said what; None when the text is anything else."""
    if not text or not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not value:
        return None
    found: list[Message] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return None
        found.append(Message(role=item["role"], text=_content(item.get("content"))))
    return found


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Content parts: the text ones read as text, the rest as JSON.
        parts = [
            part["text"]
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else json.dumps(part, ensure_ascii=False)
            for part in content
        ]
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False, indent=2)


def readable(text: str | None) -> str:
    """JSON pretty-printed, any other text as it is."""
    if not text:
        return ""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(text), ensure_ascii=False, indent=2)
        except ValueError:
            pass
    return text


def value_text(value: Any) -> str:
    """An attribute value for a table cell."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
