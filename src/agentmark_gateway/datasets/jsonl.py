"""A ``.jsonl`` body into dataset rows: all of them valid, or a 400 naming the first bad line."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agentmark_gateway.datasets.schemas import DatasetRowIn
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.templates.jsonvalues import loads


def _bad_line(number: int, reason: str) -> BadRequest:
    return BadRequest(f"Line {number}: {reason}", line=number)


def parse_rows(body: bytes) -> list[dict[str, Any]]:
    """One row per non-blank line, in order; line numbers in errors count every line."""
    try:
        text = body.decode("utf-8-sig")  # tolerate the BOM some editors write
    except UnicodeDecodeError:
        raise BadRequest("Dataset body is not valid UTF-8") from None
    rows = []
    # Split on "\n" only: JSON strings may hold U+2028 and friends, which splitlines() would cut.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(" \t\r")
        if not line:
            continue
        try:
            value = loads(line)
        except ValueError as exc:
            raise _bad_line(number, str(exc)) from None
        if not isinstance(value, dict):
            raise _bad_line(number, "each line must be a JSON object")
        try:
            row = DatasetRowIn.model_validate(value)
        except ValidationError as exc:
            raise _bad_line(number, _first_error(exc)) from None
        rows.append(row.to_data())
    return rows


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field; a row has input, expected_output and metadata"
    return f"{field}: {message}" if field else message
