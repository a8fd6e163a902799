"""From a stored span to a dataset row: the ``mapping`` of the import routes.

A mapping names, for ``input``, ``expected_output`` and each ``metadata`` key,
a source in the span:

- ``input`` / ``output``: the span's recorded input or output; text that holds a
  JSON object or array is parsed.
- ``input.a.b`` / ``output.a.0``: a value inside that parsed JSON (keys, or list
  indexes).
- ``attributes.<key>``: an OpenTelemetry attribute by its full key
  (``attributes.gen_ai.request.model``), or a value inside a nested one.
- a span field: ``name``, ``model``, ``trace_id``, ``span_id``, ... (``SPAN_FIELDS``).

Defaults: ``input`` from the span's input, ``expected_output`` from its output
(left out when the span has none). ``input`` must be an object for the prompt's
props; any other value is wrapped as ``{"input": value}``. Every row's metadata
records where it came from (``source_trace_id``, ``source_span_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

from agentmark_gateway.jsonvalues import loads
from agentmark_gateway.traces.models import Span

SPAN_FIELDS = (
    "name",
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_name",
    "session_id",
    "session_name",
    "user_id",
    "span_type",
    "model",
    "prompt_name",
    "status_message",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cost",
    "tags",
)
_ROOTS = ("input", "output", "attributes")


class MappingError(ValueError):
    """The span has no value where the mapping points."""


@dataclass(frozen=True)
class RowMapping:
    input: str | None = None
    expected_output: str | None = None
    metadata: dict[str, str] | None = None


def check_source(source: str) -> str:
    """``source`` unchanged when it names something a span has, else ``ValueError``."""
    root, dot, rest = source.partition(".")
    if root in _ROOTS:
        if root == "attributes" and not rest:
            raise _invalid("name the attribute: 'attributes.<key>'")
        if dot and any(not part for part in rest.split(".")):
            raise _invalid(f"'{source}' has an empty segment")
        return source
    if source in SPAN_FIELDS:
        return source
    raise _invalid(
        f"unknown source '{source}': use input, output, input.<path>, output.<path>, "
        f"attributes.<key> or one of {', '.join(SPAN_FIELDS)}"
    )


def _invalid(message: str) -> PydanticCustomError:
    # pydantic's ValueError: the 400 keeps the message as written (no "Value error, ").
    return PydanticCustomError("invalid_source", "{message}", {"message": message})


_MISSING = object()


def row_from_span(span: Span, mapping: RowMapping | None) -> dict[str, Any]:
    """The dataset row for ``span``; ``MappingError`` when a mapped value is missing."""
    mapping = mapping or RowMapping()
    value = read(span, mapping.input or "input")
    if value is _MISSING or value is None:
        raise MappingError(f"span has no value at '{mapping.input or 'input'}'")
    row: dict[str, Any] = {"input": value if isinstance(value, dict) else {"input": value}}

    expected = read(span, mapping.expected_output or "output")
    if expected is _MISSING and mapping.expected_output:
        raise MappingError(f"span has no value at '{mapping.expected_output}'")
    if expected is not _MISSING:
        row["expected_output"] = expected

    metadata: dict[str, Any] = {"source_trace_id": span.trace_id, "source_span_id": span.span_id}
    for key, source in (mapping.metadata or {}).items():
        found = read(span, source)
        if found is not _MISSING:
            metadata[key] = found
    row["metadata"] = metadata
    return row


def read(span: Span, source: str) -> Any:
    """The value at ``source`` in ``span``, or ``_MISSING``."""
    root, _, rest = source.partition(".")
    if root in ("input", "output"):
        text = span.input if root == "input" else span.output
        if text is None:
            return _MISSING
        return _walk(_parsed(text), rest.split(".") if rest else [])
    if root == "attributes":
        attributes = span.attributes or {}
        # OpenTelemetry keys are dotted themselves (gen_ai.request.model): whole key first.
        if rest in attributes:
            return _parsed(attributes[rest])
        return _walk(attributes, rest.split("."))
    value = getattr(span, source, None)
    return _MISSING if value is None else value


def _parsed(value: Any) -> Any:
    """Text holding a JSON object or array becomes that object or array."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return loads(value)
        except ValueError:
            return value
    return value


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        value = _parsed(value)
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return _parsed(value)
