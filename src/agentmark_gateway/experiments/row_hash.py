"""The row join key of the regression gate: prompt-core's ``hashRowInput``, in Python.

The clients hash each dataset row's ``input`` and look the baseline's scores up
by that hash, so the gateway must produce the very same 16 hex characters:
FNV-1a 64-bit over the UTF-16 code units of a canonical JSON text (keys in
UTF-16 code-unit order, no whitespace, strings and numbers written as
JavaScript's ``JSON.stringify`` writes them).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK_64 = 2**64 - 1
# The largest integer a JavaScript number holds exactly.
MAX_SAFE = 2**53
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class NotJson(ValueError):
    """Text that JavaScript's ``JSON.parse`` would refuse."""


def parse_json(text: str) -> Any:
    """``JSON.parse``: Python's parser without the NaN and Infinity it accepts beyond JSON."""

    def refuse(literal: str) -> Any:
        raise NotJson(literal)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError as error:  # JSONDecodeError is a ValueError
        raise NotJson(str(error)) from error


def hash_row_input(value: Any) -> str:
    """``hashRowInput(value)`` for a value as ``json.loads`` returns it."""
    digest = FNV_OFFSET
    units = canonical(value).encode("utf-16-le", "surrogatepass")
    for index in range(0, len(units), 2):
        digest ^= units[index] | units[index + 1] << 8
        digest = (digest * FNV_PRIME) & MASK_64
    return f"{digest:016x}"


def canonical(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=_utf16_order)
        return "{" + ",".join(f"{js_string(k)}:{canonical(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _utf16_order(key: str) -> bytes:
    # Big-endian code units compare bytewise in code-unit order, as JavaScript sorts.
    return key.encode("utf-16-be", "surrogatepass")


def js_string(text: str) -> str:
    """A string as ``JSON.stringify`` writes it: non-ASCII kept, lone surrogates escaped."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def js_number(number: int | float) -> str:
    """A number as ``JSON.stringify`` writes it (``Number.prototype.toString``)."""
    if isinstance(number, int):
        if abs(number) <= MAX_SAFE:
            return str(number)
        try:
            number = float(number)  # what JavaScript parsed the digits into
        except OverflowError:
            return "null"
    if not math.isfinite(number):
        return "null"
    if number == 0:
        return "0"  # -0 too
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that round-trip, as JavaScript picks them.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exponent)  # the value is 0.digits x 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        power = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    return sign + text
