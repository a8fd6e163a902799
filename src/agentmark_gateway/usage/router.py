"""Usage per key and per app, and least-privilege advice: management routes.

A read first writes this process's counts not yet flushed (and its last-used
times), so what an admin reads includes the request they just made.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from agentmark_gateway import moments
from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.apps.service import get_app
from agentmark_gateway.auth.deps import SignedIn, allowed
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.permissions.catalog import resolve_permissions, resolve_role
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.usage import service
from agentmark_gateway.usage.service import Bucket, Window

router = APIRouter(tags=["Usage"], route_class=ApiRoute)

AppHeader = Annotated[
    str | None, Header(alias="X-Agentmark-App-Id", description="The app whose usage this is.")
]
From = Annotated[
    DayOrMoment | None,
    Query(alias="from", description="Start (default: 24 hours before `to`)"),
]
To = Annotated[
    DayOrMoment | None,
    Query(alias="to", description="End, exclusive; a bare date means its whole day (default: now)"),
]
BucketParam = Annotated[Bucket, Query(description="Length of each point of the series")]


def _window(start: Any, end: Any, bucket: Bucket) -> Window:
    try:
        upper = None if end is None else moments.until(end)
    except ValueError as exc:
        raise BadRequest(f"to: {exc}", code="invalid_query_params") from None
    return Window.of(None if start is None else moments.earliest(start), upper, bucket)


@router.get("/v1/api-keys/{key_id}/usage", summary="One key's requests over time")
async def key_usage(
    key_id: str,
    db: DbSession,
    gateway: GatewayDep,
    x_app_id: AppHeader = None,
    start: From = None,
    end: To = None,
    bucket: BucketParam = "hour",
    user: SignedIn = allowed(Action.KEYS_LIST),
) -> dict[str, Any]:
    """Requests by outcome (2xx, 4xx, 401, 403, 429, 5xx), by the permissions they used,
    403s by the permission missing, spans and scores stored; the last client address and
    user agent. Minute points cover the last 48 hours, hours the last 90 days."""
    key = await keys.live_key(db, key_id, x_app_id)
    window = _window(start, end, bucket)
    await service.write_pending(gateway)
    return {"data": await service.key_usage(db, key, window)}


@router.get("/v1/usage", summary="An app's requests over time, and per key")
async def app_usage(
    db: DbSession,
    gateway: GatewayDep,
    x_app_id: AppHeader = None,
    start: From = None,
    end: To = None,
    bucket: BucketParam = "hour",
    user: SignedIn = allowed(Action.KEYS_LIST),
) -> dict[str, Any]:
    if not x_app_id:
        raise BadRequest("Name the app in X-Agentmark-App-Id", code="missing_app_id")
    app = await get_app(db, x_app_id)
    window = _window(start, end, bucket)
    await service.write_pending(gateway)
    return {"data": await service.app_usage(db, app.id, window)}


@router.get("/v1/api-keys/{key_id}/advice", summary="Least-privilege advice for one key")
async def key_advice(
    key_id: str,
    db: DbSession,
    gateway: GatewayDep,
    x_app_id: AppHeader = None,
    role: Annotated[
        str | None, Query(description="Preview: a preset to compare with the key's use")
    ] = None,
    permissions: Annotated[
        list[str] | None, Query(description="Preview: a custom set (repeat the parameter)")
    ] = None,
    user: SignedIn = allowed(Action.KEYS_LIST),
) -> dict[str, Any]:
    """The permissions used and unused over 7 and 30 days, the 403s by the permission
    missing, and the narrowest preset or custom set that would have allowed every request
    admitted in 30 days. With ``role`` or ``permissions``: how many of the last 7 days'
    admitted requests that set would have refused."""
    key = await keys.live_key(db, key_id, x_app_id)
    preview = None
    if role is not None or permissions:
        chosen_role, stored = resolve_role(role, permissions)
        preview = resolve_permissions(chosen_role, stored)
    await service.write_pending(gateway)
    return {"data": await service.advice(db, key, preview=preview)}
