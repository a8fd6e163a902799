"""Control and bidi-override characters: refused in names, escaped on a terminal.

A key name holding ANSI escapes rewrites the operator's terminal when the CLI
prints it (erasing lines, changing the window title); a bidi override makes a
name read differently from what it is. Names and emails refuse them on the way
in; the CLI escapes them on the way out, for rows stored before this check.
"""

from __future__ import annotations

import re

from agentmark_gateway.errors import BadRequest

# C0, DEL and C1 controls; the bidi embeddings, overrides (U+202A-202E) and isolates (U+2066-2069).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def first_refused(value: str) -> str | None:
    """The first control or bidi-override character of ``value``, if any."""
    found = _CONTROLS.search(value)
    return None if found is None else found.group()


def check_plain(value: str, field: str) -> str:
    """``value`` unchanged, or a 400 naming ``field`` and the first character refused."""
    found = first_refused(value)
    if found is not None:
        raise BadRequest(
            f"{field} must not contain control or bidi-override characters "
            f"(found U+{ord(found):04X})",
            code="invalid_request_body",
        )
    return value


def escape_controls(text: str) -> str:
    """``text`` with each refused character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
