"""Routes of AgentMark's API that only make sense in AgentMark Cloud: a 501 saying why.

AgentMark Cloud builds an app from a connected git repository and keeps its
deployments. A gateway has neither: templates reach it from ``agentmark-gateway
templates push`` (run in CI). Clients and agents that probe these routes get a
clear 501 in the error envelope instead of a bare 404, whatever their
credentials: the answer holds no data.

They stay out of the OpenAPI document: AgentMark's MCP server turns every
operation there into a tool for agents, and a tool that can only fail is noise.
``docs/permissions.md`` and ``docs/compatibility.md`` list them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from fastapi import APIRouter

from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.errors import NotImplementedHere

_PUSH = "publish templates with `agentmark-gateway templates push`, e.g. from CI"
DEPLOYMENTS = (
    "Deployments are AgentMark Cloud builds of a connected git repository; this gateway "
    f"has none: {_PUSH}."
)
GIT = (
    "Connecting a git repository to an app is an AgentMark Cloud feature; this gateway "
    f"does not read repositories: {_PUSH}."
)

# (method, path, why): the reference API's cloud-only operations.
CLOUD_ONLY: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v1/deployments", DEPLOYMENTS),
    ("GET", "/v1/deployments/{deploymentId}", DEPLOYMENTS),
    ("GET", "/v1/apps/{appId}/git", GIT),
    ("GET", "/v1/apps/{appId}/git/branches", GIT),
    ("GET", "/v1/apps/{appId}/git/repositories", GIT),
    ("POST", "/v1/apps/{appId}/git/connect", GIT),
    ("POST", "/v1/apps/{appId}/git/link", GIT),
    ("DELETE", "/v1/apps/{appId}/git/link", GIT),
)
CLOUD_ONLY_ROUTES: frozenset[tuple[str, str]] = frozenset(
    (method, path) for method, path, _ in CLOUD_ONLY
)

router = APIRouter(tags=["AgentMark Cloud only"], route_class=ApiRoute)


def _refusal(why: str) -> Callable[[], Awaitable[NoReturn]]:
    async def not_available() -> NoReturn:
        raise NotImplementedHere(why)

    return not_available


for _method, _path, _why in CLOUD_ONLY:
    router.add_api_route(
        _path,
        _refusal(_why),
        methods=[_method],
        summary="AgentMark Cloud only (501)",
        description=_why,
        response_model=None,
        status_code=501,
        include_in_schema=False,
    )
