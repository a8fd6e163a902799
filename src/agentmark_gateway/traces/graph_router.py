"""``GET /v1/traces/{traceId}/graph``: the reference API's deprecated agent-graph view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.deps import DbSession
from agentmark_gateway.permissions.enforce import requires
from agentmark_gateway.traces import graph

router = APIRouter(tags=["Traces"], route_class=ApiRoute)

# The reference API retires this route on that day in favour of ?fields=graph.
SUNSET = "Tue, 21 Oct 2026 00:00:00 GMT"

TraceId = Annotated[
    str, Path(alias="traceId", max_length=64, description="Trace id (32 hex characters).")
]


@router.get(
    "/v1/traces/{traceId}/graph",
    summary="Get a trace's agent graph (deprecated)",
    description="One node per span that declares `graph.node.id` in its metadata, in start "
    "order, one entry per parent. Deprecated as in AgentMark's API (successor: "
    "`GET /v1/traces/{traceId}?fields=graph`); answers carry `Deprecation`, `Sunset` and "
    "`Link` headers.",
    deprecated=True,
    responses={404: {"description": "No such trace in this app"}},
)
async def get_trace_graph(
    *,
    key: VerifiedKey = requires("trace.read"),
    db: DbSession,
    trace_id: TraceId,
    response: Response,
) -> dict[str, Any]:
    trace_id = trace_id.lower()
    nodes = await graph.trace_graph(db, app_id=key.app_id, trace_id=trace_id)
    response.headers["Deprecation"] = "true"
    response.headers["Sunset"] = SUNSET
    response.headers["Link"] = f'</v1/traces/{trace_id}?fields=graph>; rel="successor-version"'
    return {"data": nodes}
