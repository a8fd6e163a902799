"""The queryable columns of a span, derived from the attributes SDKs set.

The AgentMark SDK names traces, sessions, users, prompts and dataset runs with
``agentmark.*`` keys (``agentmark.tags`` is a JSON list, metadata arrives as
``agentmark.metadata.<key>``; the old AI SDK adapter wrote a run's marks as Vercel
AI SDK telemetry metadata, ``ai.telemetry.metadata.<key>``); model calls carry
OpenTelemetry GenAI (``gen_ai.*``) or OpenInference (``llm.*``, ``input.value``)
keys. A span's own attributes win over its resource's. A value of an unexpected
type is ignored, never an error: the raw attributes are kept whole anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from agentmark_gateway.pricing import PriceTable
from agentmark_gateway.traces.otlp import OtlpSpan

METADATA_PREFIX = "agentmark.metadata."
# Vercel AI SDK telemetry metadata (``experimental_telemetry.metadata``).
AI_METADATA_PREFIX = "ai.telemetry.metadata."
MAX_INT32 = 2**31 - 1
MAX_TAG_LENGTH = 255

TRACE_NAME_KEYS = ("agentmark.trace_name",)
SESSION_ID_KEYS = ("agentmark.session_id", "gen_ai.conversation.id", "session.id")
SESSION_NAME_KEYS = ("agentmark.session_name",)
USER_ID_KEYS = ("agentmark.user_id", "user.id")


def _run_mark(key: str) -> tuple[str, ...]:
    """A dataset run's mark as the SDKs write it, then as metadata, then as the old AI SDK
    adapter wrote it, in the Vercel AI SDK's telemetry metadata: best first, as
    AgentMark's own normalizer reads them."""
    return (f"agentmark.{key}", f"{METADATA_PREFIX}{key}", f"{AI_METADATA_PREFIX}{key}")


# A dataset run's marks, on each row's root span (rolled up per trace); the old adapter
# put them on the AI SDK's spans instead, which may not be the root.
DATASET_RUN_KEYS = _run_mark("dataset_run_id")
DATASET_RUN_NAME_KEYS = _run_mark("dataset_run_name")
DATASET_PATH_KEYS = _run_mark("dataset_path")
EXPERIMENT_KEY_KEYS = ("agentmark.experiment_key",)
TREE_HASH_KEYS = ("agentmark.source_tree_hash",)
COMMIT_SHA_KEYS = _run_mark("commit_sha")[1:]  # metadata only: no client sets the bare key
PROMPT_NAME_KEYS = _run_mark("prompt_name")
# Not derived columns: read from a row's span when a run is shown (experiments/service.py).
DATASET_ITEM_NAME_KEYS = _run_mark("dataset_item_name")
DATASET_EXPECTED_OUTPUT_KEYS = _run_mark("dataset_expected_output")
DATASET_INPUT_KEYS = _run_mark("dataset_input")
PROPS_KEYS = _run_mark("props")
MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
INPUT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
COST_KEYS = ("agentmark.cost", "gen_ai.usage.cost")
INPUT_KEYS = (
    "agentmark.request.input",
    "agentmark.input",
    "gen_ai.request.input",
    "input.value",
    "gen_ai.input.messages",
    "gen_ai.prompt",
    "ai.prompt.messages",
    "ai.prompt",
)
OUTPUT_KEYS = (
    "agentmark.response.output",
    "agentmark.output",
    "gen_ai.response.output",
    "output.value",
    "gen_ai.output.messages",
    "gen_ai.completion",
    "ai.response.text",
)
OUTPUT_OBJECT_KEYS = ("gen_ai.response.output_object", "ai.response.object")
TOOL_CALL_KEYS = ("gen_ai.response.tool_calls", "ai.response.toolCalls")
FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "ai.response.finishReason")
# Keys that make a span a model call even without agentmark.span.kind = llm.
GENERATION_MARKERS = ("gen_ai.system", "gen_ai.request.model", "gen_ai.operation.name")
# OpenInference's span kinds, in the AgentMark SDK's vocabulary.
OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "CHAIN": "function",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "EMBEDDING": "embedding",
    "GUARDRAIL": "guardrail",
}
LLM = "llm"

# Column widths of the spans table: PostgreSQL refuses longer values.
_WIDTHS = {
    "session_id": 255,
    "user_id": 255,
    "model": 255,
    "dataset_run_id": 255,
    "span_type": 64,
    "experiment_key": 255,
    "tree_hash": 255,
    "commit_sha": 255,
}


def first(attributes: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def text_of(value: Any) -> str | None:
    """A value as text: strings as they are, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _label(value: Any, width: int | None = None) -> str | None:
    """A short identifier (session, user, model...): scalars only, cut to the column."""
    if value is None:  # the usual case, answered before the type checks
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    label = str(value).strip()
    if not label:
        return None
    return label[:width] if width else label


def _count(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return 0
    if isinstance(value, int | float) and math.isfinite(value):
        return max(0, min(int(value), MAX_INT32))
    return 0


def _money(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def tags_of(value: Any) -> list[str]:
    """``agentmark.tags``: a JSON list in a string (the SDK's form), an array, or one tag."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except ValueError:
                return [stripped[:MAX_TAG_LENGTH]]
        else:
            return [stripped[:MAX_TAG_LENGTH]] if stripped else []
    if not isinstance(value, list):
        return []
    tags: list[str] = []
    for item in value:
        tag = _label(item, MAX_TAG_LENGTH)
        if tag is not None and tag not in tags:
            tags.append(tag)
    return tags


def span_type(attributes: dict[str, Any]) -> str | None:
    """The AgentMark span kind (llm, tool, agent, ...), or llm for a bare model call."""
    kind = attributes.get("agentmark.span.kind")
    if isinstance(kind, str) and kind.strip():
        return kind.strip().lower()[: _WIDTHS["span_type"]]
    openinference = attributes.get("openinference.span.kind")
    if isinstance(openinference, str) and openinference.strip():
        upper = openinference.strip().upper()
        return OPENINFERENCE_KINDS.get(upper, upper.lower()[: _WIDTHS["span_type"]])
    if any(attributes.get(key) is not None for key in GENERATION_MARKERS):
        return LLM
    return None


def metadata_of(attributes: dict[str, Any]) -> dict[str, str]:
    """``agentmark.metadata.<key>`` attributes as ``{key: text}``."""
    return {
        key[len(METADATA_PREFIX) :]: text_of(value) or ""
        for key, value in attributes.items()
        if key.startswith(METADATA_PREFIX)
    }


# The attribute keys behind each derived column, best first. Fields read from the
# span's own attributes only, and those a resource may set (identity, tags).
_SPAN_FIELDS = {
    "model": MODEL_KEYS,
    "input_tokens": INPUT_TOKEN_KEYS,
    "output_tokens": OUTPUT_TOKEN_KEYS,
    "cost": COST_KEYS,
    "prompt_name": PROMPT_NAME_KEYS,
    "input": INPUT_KEYS,
    "output": OUTPUT_KEYS,
}
_MERGED_FIELDS = {
    "trace_name": TRACE_NAME_KEYS,
    "session_id": SESSION_ID_KEYS,
    "session_name": SESSION_NAME_KEYS,
    "user_id": USER_ID_KEYS,
    "dataset_run_id": DATASET_RUN_KEYS,
    "dataset_run_name": DATASET_RUN_NAME_KEYS,
    "dataset_path": DATASET_PATH_KEYS,
    "experiment_key": EXPERIMENT_KEY_KEYS,
    "tree_hash": TREE_HASH_KEYS,
    "commit_sha": COMMIT_SHA_KEYS,
    "tags": ("agentmark.tags",),
}


def _ranks(*groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, int]]:
    """key -> (field, rank): one look-up per attribute a span has, instead of one per
    key a field could come from (a span carries a few of the ~40 keys)."""
    ranks = {
        key: (field, rank)
        for fields in groups
        for field, keys in fields.items()
        for rank, key in enumerate(keys)
    }
    if len(ranks) != sum(len(keys) for fields in groups for keys in fields.values()):
        raise ValueError("an attribute key feeds two derived fields")
    return ranks


_SPAN_RANKS = _ranks(_SPAN_FIELDS, _MERGED_FIELDS)
_RESOURCE_RANKS = _ranks(_MERGED_FIELDS)


def _best(
    attributes: dict[str, Any],
    ranks: dict[str, tuple[str, int]],
    found: dict[str, tuple[int, Any]],
    hidden: dict[str, Any],
) -> None:
    """Adds to ``found`` each field's best-ranked non-empty value in ``attributes``.

    Keys in ``hidden`` are skipped: a span's own attribute, even an empty one,
    hides its resource's value for the same key (as ``{**resource, **span}`` would).
    """
    for key, value in attributes.items():
        hit = ranks.get(key)
        if hit is None or value is None or value == "" or key in hidden:
            continue
        field, rank = hit
        best = found.get(field)
        if best is None or rank < best[0]:
            found[field] = (rank, value)


def _values(span: OtlpSpan) -> dict[str, Any]:
    """Each derived field's winning attribute value: what ``first`` would pick."""
    found: dict[str, tuple[int, Any]] = {}
    _best(span.attributes, _SPAN_RANKS, found, {})
    if span.resource_attributes:
        # Identity may ride on the resource (one process, one user or session).
        _best(span.resource_attributes, _RESOURCE_RANKS, found, span.attributes)
    return {field: value for field, (_, value) in found.items()}


def row_of(span: OtlpSpan, *, app_id: str, prices: PriceTable) -> dict[str, Any]:
    """The ``spans`` row for one decoded span."""
    attributes = span.attributes
    get = _values(span).get
    model = _label(get("model"), _WIDTHS["model"])
    input_tokens = _count(get("input_tokens"))
    output_tokens = _count(get("output_tokens"))
    cost = _money(get("cost"))
    if cost is None:
        cost = prices.cost(model, input_tokens, output_tokens)
    tags = get("tags")
    return {
        "app_id": app_id,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "start_time_ns": span.start_time_ns,
        "end_time_ns": span.end_time_ns,
        "duration_ms": (span.end_time_ns - span.start_time_ns) / 1_000_000,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": attributes,
        "resource_attributes": span.resource_attributes,
        "events": span.events,
        "links": span.links,
        "scope_name": span.scope_name[:255] if span.scope_name else None,
        "trace_name": _label(get("trace_name")),
        "session_id": _label(get("session_id"), _WIDTHS["session_id"]),
        "session_name": _label(get("session_name")),
        "user_id": _label(get("user_id"), _WIDTHS["user_id"]),
        "tags": tags_of(tags) if tags is not None else [],
        "span_type": span_type(attributes),
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": cost,
        "dataset_run_id": _label(get("dataset_run_id"), _WIDTHS["dataset_run_id"]),
        # Not span columns: only the trace roll-up keeps these (ingest.py).
        "dataset_run_name": _label(get("dataset_run_name")),
        "dataset_path": _label(get("dataset_path")),
        "experiment_key": _label(get("experiment_key"), _WIDTHS["experiment_key"]),
        "tree_hash": _label(get("tree_hash"), _WIDTHS["tree_hash"]),
        "commit_sha": _label(get("commit_sha"), _WIDTHS["commit_sha"]),
        "prompt_name": _label(get("prompt_name")),
        "input": text_of(get("input")),
        "output": text_of(get("output")),
    }
