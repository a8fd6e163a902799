"""What the benchmark sends: a published template, a score, and OTLP JSON traces."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

TEMPLATE_PATH = "bench/greeting.prompt.mdx"
SPANS_PER_REQUEST = 100

# Marks the trace id in the OTLP body; replaced by a fresh hex id for each request.
_TRACE_PLACEHOLDER = b"T" * 32


def template_ast() -> dict[str, Any]:
    """A small built prompt template, the shape ``templates push`` publishes."""
    return {
        "type": "root",
        "children": [
            {
                "type": "yaml",
                "value": "name: greeting\ntext_config:\n  model_name: gpt-4o-mini\n",
            },
            {
                "type": "mdxJsxFlowElement",
                "name": "System",
                "attributes": [],
                "children": [
                    {
                        "type": "paragraph",
                        "children": [{"type": "text", "value": "You greet people warmly."}],
                    }
                ],
            },
            {
                "type": "mdxJsxFlowElement",
                "name": "User",
                "attributes": [],
                "children": [
                    {
                        "type": "paragraph",
                        "children": [
                            {"type": "text", "value": "Say hello to "},
                            {"type": "mdxTextExpression", "value": "props.name"},
                        ],
                    }
                ],
            },
        ],
    }


def score_body() -> bytes:
    """A score as the published Python SDK posts it (camelCase)."""
    return json.dumps(
        {
            "resourceId": secrets.token_hex(16),
            "name": "accuracy",
            "score": 0.92,
            "label": "good",
            "reason": "The answer matched the reference.",
            "type": "numeric",
            "source": "eval",
        }
    ).encode()


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(index: int, start_ns: int) -> dict[str, Any]:
    span_id = f"{index + 1:016x}"
    attributes = [
        _attribute("gen_ai.request.model", "gpt-4o-mini"),
        _attribute("gen_ai.usage.input_tokens", 120 + index),
        _attribute("gen_ai.usage.output_tokens", 40 + index),
        _attribute("agentmark.session_id", "bench-session"),
        _attribute("agentmark.user_id", "bench-user"),
        _attribute("agentmark.prompt_name", "greeting"),
        _attribute("agentmark.props", json.dumps({"name": f"user {index}"})),
        _attribute("agentmark.output", f"Hello, user {index}! Nice to meet you."),
    ]
    span: dict[str, Any] = {
        "traceId": _TRACE_PLACEHOLDER.decode(),
        "spanId": span_id,
        "name": "agent run" if index == 0 else f"llm call {index}",
        "kind": 1 if index == 0 else 3,
        "startTimeUnixNano": str(start_ns + index * 1_000_000),
        "endTimeUnixNano": str(start_ns + index * 1_000_000 + 800_000),
        "attributes": attributes,
        "status": {"code": 1},
    }
    if index > 0:
        span["parentSpanId"] = f"{1:016x}"
    return span


class TraceBodies:
    """OTLP/HTTP JSON bodies of one trace with ``spans`` spans; each body a new trace id.

    The body is serialised once; a request only swaps in its trace id, so the load
    generator spends its time sending, not building JSON.
    """

    def __init__(self, spans: int = SPANS_PER_REQUEST) -> None:
        self.spans = spans
        self._run = secrets.token_hex(8)
        self._sequence = 0
        start_ns = time.time_ns()
        document = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [_attribute("service.name", "agentmark-bench")]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "agentmark"},
                            "spans": [_span(i, start_ns) for i in range(spans)],
                        }
                    ],
                }
            ]
        }
        self._template = json.dumps(document, separators=(",", ":")).encode()

    def next(self) -> bytes:
        self._sequence += 1
        trace_id = f"{self._run}{self._sequence:016x}".encode()
        return self._template.replace(_TRACE_PLACEHOLDER, trace_id)
