"""A trace's agent graph: the nodes its spans declare in metadata (``graph.node.*``).

Frameworks that run agent graphs tag each step's span with metadata
``graph.node.id``, ``graph.node.type``, ``graph.node.display_name`` and its
parents, ``graph.node.parent_id`` or ``graph.node.parent_ids`` (a JSON array in a
string). The AgentMark SDKs write metadata as ``agentmark.metadata.<key>``; the
Vercel AI SDK as ``ai.telemetry.metadata.<key>``: both are read.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.errors import BadRequest, NotFound
from agentmark_gateway.traces.models import Span

METADATA_PREFIXES = ("agentmark.metadata.", "ai.telemetry.metadata.")
# What ``GET /v1/traces/{traceId}?fields=`` may add to a trace.
EXTRA_FIELDS = ("graph",)


def _metadata(attributes: dict[str, Any], key: str) -> str | None:
    for prefix in METADATA_PREFIXES:
        value = attributes.get(prefix + key)
        if value is not None and value != "":
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _parents(attributes: dict[str, Any]) -> list[str | None]:
    """Each parent node id, or [None] for a node without parents."""
    many = _metadata(attributes, "graph.node.parent_ids")
    if many is not None:
        try:
            parsed = json.loads(many)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and parsed:
            return [str(item) for item in parsed]
    return [_metadata(attributes, "graph.node.parent_id")]


def nodes_of(spans: list[Span]) -> list[dict[str, Any]]:
    """One entry per graph span (in start order) and parent: a node of two parents is two edges."""
    nodes = []
    for span in spans:
        attributes = span.attributes or {}
        node_id = _metadata(attributes, "graph.node.id")
        if node_id is None:
            continue
        node = {
            "nodeId": node_id,
            "spanId": span.span_id,
            "nodeType": _metadata(attributes, "graph.node.type") or "",
            "displayName": _metadata(attributes, "graph.node.display_name") or node_id,
            "spanName": span.name,
        }
        for parent in _parents(attributes):
            nodes.append(node if parent is None else {**node, "parentNodeId": parent})
    return nodes


async def trace_graph(session: AsyncSession, *, app_id: str, trace_id: str) -> list[dict[str, Any]]:
    spans = list(
        await session.scalars(
            select(Span)
            .where(Span.app_id == app_id, Span.trace_id == trace_id)
            .order_by(Span.start_time_ns, Span.span_id)
        )
    )
    if not spans:
        raise NotFound(f"Trace '{trace_id}' not found", code="trace_not_found")
    return nodes_of(spans)


def wants_graph(fields: str | None) -> bool:
    """Whether ``?fields=`` (comma-separated) asks for the graph; 400 for a field not known."""
    if fields is None:
        return False
    names = {name.strip() for name in fields.split(",") if name.strip()}
    unknown = sorted(names - set(EXTRA_FIELDS))
    if unknown:
        raise BadRequest(
            f"Invalid query parameters: fields: unknown field '{unknown[0]}' "
            f"(one of {', '.join(EXTRA_FIELDS)})",
            code="invalid_query_params",
        )
    return "graph" in names
