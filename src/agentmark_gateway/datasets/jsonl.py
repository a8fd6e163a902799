"""A ``.jsonl`` body into dataset rows: all of them valid, or a 400 naming the first bad line.

The body arrives in pieces (``body_stream``) and is parsed as it comes: each
valid row is kept as one compact JSON line (about its size in the body, where a
parsed object would take tens of times more), and the row past ``max_rows`` ends
the upload with a 413 at once, however much of the body is still to come.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agentmark_gateway.datasets.schemas import DatasetRowIn
from agentmark_gateway.errors import BadRequest, PayloadTooLarge
from agentmark_gateway.jsonvalues import dumps_line, loads


def too_many_rows(max_rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A dataset holds at most {max_rows} rows (AGENTMARK_MAX_DATASET_ROWS)", max_rows=max_rows
    )


class RowParser:
    """Feed it the body in any cut; ``finish()`` gives the rows, one encoded line each."""

    def __init__(self, *, max_rows: int) -> None:
        self.max_rows = max_rows
        self.rows: list[bytes] = []
        self._line_number = 0
        # The start of a line whose end has not arrived yet, in the pieces it came in.
        self._pending: list[bytes] = []

    def feed(self, piece: bytes) -> None:
        # Split on "\n" only: JSON strings may hold U+2028 and friends, which splitlines()
        # would cut (in UTF-8 no other character contains the byte 0x0A).
        if b"\n" not in piece:
            self._pending.append(piece)
            return
        lines = piece.split(b"\n")
        self._pending.append(lines[0])
        self._parse(b"".join(self._pending))
        for line in lines[1:-1]:
            self._parse(line)
        self._pending = [lines[-1]]

    def finish(self) -> list[bytes]:
        self._parse(b"".join(self._pending))
        self._pending = []
        return self.rows

    def _parse(self, line: bytes) -> None:
        self._line_number += 1
        number = self._line_number
        try:
            # The BOM some editors write is tolerated at the start of the body.
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"Dataset body is not valid UTF-8 (line {number})") from None
        text = text.strip(" \t\r")
        if not text:
            return
        if len(self.rows) >= self.max_rows:
            raise too_many_rows(self.max_rows)
        try:
            value = loads(text)
        except ValueError as exc:
            raise _bad_line(number, str(exc)) from None
        if not isinstance(value, dict):
            raise _bad_line(number, "each line must be a JSON object")
        try:
            row = DatasetRowIn.model_validate(value)
        except ValidationError as exc:
            raise _bad_line(number, _first_error(exc)) from None
        self.rows.append(dumps_line(row.to_data()))


def _bad_line(number: int, reason: str) -> BadRequest:
    return BadRequest(f"Line {number}: {reason}", line=number)


def _first_error(exc: ValidationError) -> str:
    error: Any = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field; a row has input, expected_output and metadata"
    return f"{field}: {message}" if field else message
