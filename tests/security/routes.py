"""The data routes, walked from the route table, and their example requests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from agentmark_gateway.permissions.table import route_rows
from agentmark_gateway.routers import api_routes
from tests.route_examples import Context, all_examples

DataRoute = tuple[str, str, tuple[str, ...]]


def data_routes() -> list[DataRoute]:
    """``(method, path, permissions)`` of every data route (docs/permissions.md's table)."""
    return sorted(
        (r.method, r.path, r.permissions) for r in route_rows(api_routes()) if r.kind == "data"
    )


def route_id(route: DataRoute) -> str:
    return f"{route[0]} {route[1]}"


def call_example(
    client: TestClient,
    *,
    method: str,
    path: str,
    app_id: str,
    full_key: str,
    headers: dict[str, str],
) -> Any:
    """The route's example request (seeded with the full-access key), sent with ``headers``."""
    context = Context(client=client, app_id=app_id, full_key=full_key)
    request = all_examples()[(method, path)](context)
    return client.request(
        request.method,
        request.url,
        json=request.json,
        content=request.content,
        params=request.params,
        headers={**request.headers, **headers},
    )
