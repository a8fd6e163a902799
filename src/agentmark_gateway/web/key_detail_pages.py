"""Settings > API Keys > one key: its requests over time, the permissions it used and
was refused, where it was last used from, its history, and "Shrink to what's used".

Edit, roll and delete are the list's dialogs (``key_pages``), opened from here. Every
read first writes this process's pending counts and last-used times
(``usage.service.write_pending``), so the page includes the request made a second ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from sqlalchemy import select

from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.audit import service as audit
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import BadRequest, Forbidden, InvalidPermissions, NotFound
from agentmark_gateway.permissions.catalog import (
    CUSTOM,
    ROLES,
    normalize_permissions,
    ordered,
    resolve_permissions,
)
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.usage import service as usage
from agentmark_gateway.web.audit_pages import Entry, describe
from agentmark_gateway.web.context import AppRef, CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

# Registered after key_pages, whose /new and /rows would otherwise read as key ids.
router = APIRouter(prefix="/apps/{app_id}/settings/api-keys/{key_id}", route_class=WebRoute)

KeyId = Annotated[str, Path(max_length=64)]
RangeParam = Annotated[str, Query(alias="range", max_length=16)]
PermissionsParam = Annotated[list[str] | None, Query(max_length=64)]
PermissionsField = Annotated[list[str] | None, Form()]
HISTORY_SIZE = 20


@dataclass(frozen=True)
class Range:
    """One choice of the chart's range selector."""

    id: str
    label: str
    length: timedelta
    bucket: usage.Bucket

    def window(self) -> usage.Window:
        end = utcnow()
        return usage.Window.of(end - self.length, end, self.bucket)


RANGES = (
    Range("24h", "24 hours, by hour", timedelta(hours=24), "hour"),
    Range("24h-minutes", "24 hours, by minute", timedelta(hours=24), "minute"),
    Range("7d", "7 days, by hour", timedelta(days=7), "hour"),
    Range("30d", "30 days, by day", timedelta(days=30), "day"),
)
DEFAULT_RANGE = RANGES[0]

# (key in usage's "outcomes", label); the chart's colors follow this order (charts.js).
OUTCOMES = (
    ("2xx", "2xx"),
    ("4xx", "Other 4xx"),
    ("401", "401"),
    ("403", "403"),
    ("429", "429"),
    ("5xx", "5xx"),
)


def _range(value: str) -> Range:
    # An unknown value (an old link) shows the default rather than an error page.
    return next((r for r in RANGES if r.id == value), DEFAULT_RANGE)


@dataclass(frozen=True)
class PermissionUse:
    """One row of "permissions used vs granted"."""

    name: str
    granted: bool
    week: int
    month: int


@dataclass(frozen=True)
class Point:
    """One bucket of the series with requests in it, for the table under the chart."""

    start: datetime
    outcomes: dict[str, int]
    requests: int


def _chart(data: dict[str, Any]) -> dict[str, Any]:
    """The series as charts.js draws it: bucket starts (Unix seconds) and one
    list of counts per outcome."""
    series = data["series"]
    return {
        "bucket": data["bucket"],
        "x": [int(datetime.fromisoformat(p["start"]).timestamp()) for p in series],
        "series": [
            {"label": label, "values": [p["outcomes"][code] for p in series]}
            for code, label in OUTCOMES
        ],
    }


def _summary(totals: dict[str, Any], chosen: Range) -> str:
    """The chart in one sentence, for screen readers (the table has every number)."""
    span = chosen.label.split(",")[0]
    if not totals["requests"]:
        return f"No requests in the last {span}."
    counts = totals["outcomes"]
    kept = [f"{label} {counts[code]:,}" for code, label in OUTCOMES if counts[code]]
    return f"{totals['requests']:,} requests in the last {span}: {', '.join(kept)}."


def _points(data: dict[str, Any]) -> list[Point]:
    return [
        Point(
            start=datetime.fromisoformat(p["start"]),
            outcomes=p["outcomes"],
            requests=p["requests"],
        )
        for p in data["series"]
        if p["requests"]
    ]


def _permission_uses(
    granted: frozenset[str], week: dict[str, int], month: dict[str, int]
) -> list[PermissionUse]:
    # A permission used before an edit took it away still shows, as not granted.
    return [
        PermissionUse(
            name=name, granted=name in granted, week=week.get(name, 0), month=month.get(name, 0)
        )
        for name in ordered(granted | set(month))
    ]


async def _history(db: DbSession, app: AppRef, key: ApiKey) -> list[Entry]:
    """The key's audit events, with those of the key it replaced (whose roll made it)."""
    replaced = list(await db.scalars(select(ApiKey.id).where(ApiKey.rolled_to == key.id)))
    events, _total = await audit.list_events(
        db, app_id=app.id, target_ids=[key.id, *replaced], limit=HISTORY_SIZE
    )
    return [describe(event) for event in events]


async def _detail_context(db: DbSession, app: AppRef, key: ApiKey, chosen: Range) -> dict[str, Any]:
    now = utcnow()
    chart = await usage.key_usage(db, key, chosen.window())
    week = await usage.key_usage(db, key, usage.Window.of(now - timedelta(days=7), now, "day"))
    month = await usage.key_usage(db, key, usage.Window.of(now - timedelta(days=30), now, "day"))
    advice = await usage.advice(db, key)
    granted = resolve_permissions(key.role, key.permissions)
    return {
        "key": keys.to_public(key),
        "display_name": keys.base_name(key),
        "ranges": RANGES,
        "range": chosen,
        "outcomes": OUTCOMES,
        "chart": _chart(chart),
        "chart_summary": _summary(chart["totals"], chosen),
        "points": _points(chart),
        "permission_uses": _permission_uses(
            granted, week["totals"]["permissions"], month["totals"]["permissions"]
        ),
        "granted_count": len(granted),
        "used_count": len(set(month["totals"]["permissions"]) & granted),
        "refused": advice["refused"],
        "advice": advice["advice"],
        "last_seen": month,
        "history": await _history(db, app, key),
    }


def _detail_url(app: AppRef, key_id: str) -> str:
    return f"/apps/{app.id}/settings/api-keys/{key_id}"


@router.get("")
async def key_page(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    app: CurrentApp,
    key_id: KeyId,
    range_id: RangeParam = DEFAULT_RANGE.id,
    viewer: Viewer = allowed(Action.KEYS_LIST),
) -> Response:
    await usage.write_pending(gateway)
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    context = await page_context(request, db, viewer, app, "api-keys")
    keys_url = f"/apps/{app.id}/settings/api-keys"
    context.update(
        crumbs=[("Settings", keys_url), ("API Keys", keys_url), (keys.base_name(key), None)]
    )
    context.update(await _detail_context(db, app, key, _range(range_id)))
    return render(request, "keys/detail.html", context)


@router.get("/panel")
async def key_panel(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    app: CurrentApp,
    key_id: KeyId,
    range_id: RangeParam = DEFAULT_RANGE.id,
    viewer: Viewer = allowed(Action.KEYS_LIST),
) -> Response:
    """The page's content again: after an edit, a roll or a shrink made in a dialog, or
    for another range. After a delete there is no key: back to the list."""
    await usage.write_pending(gateway)
    try:
        key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    except NotFound:
        if not await _deleted_here(db, app, key_id):
            raise
        return redirect(request, f"/apps/{app.id}/settings/api-keys")
    context = {
        "viewer": viewer,
        "app": app,
        **await _detail_context(db, app, key, _range(range_id)),
    }
    headers = {"HX-Replace-Url": _detail_url(app, key_id) + _range_query(_range(range_id))}
    return render(request, "keys/_detail.html", context, headers=headers)


async def _deleted_here(db: DbSession, app: AppRef, key_id: str) -> bool:
    """Whether ``key_id`` was a key of this app (deleted, or rolled with no grace)."""
    found = await db.scalar(
        select(ApiKey.id).where(
            ApiKey.id == key_id, ApiKey.app_id == app.id, ApiKey.deleted_at.is_not(None)
        )
    )
    return found is not None


def _range_query(chosen: Range) -> str:
    return "" if chosen == DEFAULT_RANGE else f"?range={chosen.id}"


# -- Shrink to what's used ------------------------------------------------------------


async def _shrinkable(db: DbSession, app: AppRef, key_id: str) -> ApiKey:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    if key.rolled_to is not None:
        raise BadRequest(
            "This key is being retired: shrink the key that replaced it",
            code="api_key_retiring",
        )
    return key


async def _preview_context(db: DbSession, key: ApiKey, chosen: list[str]) -> dict[str, Any]:
    """What saving ``chosen`` would do: the last 7 days' requests it would have
    refused, what it adds and removes, and whether it is a preset."""
    granted = resolve_permissions(key.role, key.permissions)
    wanted = frozenset(chosen)
    found = await usage.advice(db, key, preview=wanted)
    # Saved as a preset when the set is exactly one (usage.narrowest).
    role = usage.narrowest(wanted)[0] if wanted else None
    return {
        "chosen": chosen,
        "preview": found["preview"],
        "advice": found["advice"],
        "used_30d": set(found["windows"]["30d"]["used"]),
        "saved_as": ROLES[role].label if role and role != CUSTOM else None,
        "added": ordered(wanted - granted),
        "removed": ordered(granted - wanted),
    }


def _chosen(permissions: list[str] | None) -> list[str]:
    """The boxes ticked, known permissions only, in catalog order (400 on others)."""
    return normalize_permissions(permissions or [])


async def _shrink_dialog(
    request: Request,
    db: DbSession,
    viewer: Viewer,
    app: AppRef,
    key: ApiKey,
    chosen: list[str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        key=keys.to_public(key),
        display_name=keys.base_name(key),
        error=error,
        **await _preview_context(db, key, chosen),
    )
    return render(request, "keys/shrink.html", context, status_code=status_code)


@router.get("/shrink")
async def shrink_form(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    """The advice, its set ticked, and what that set would have refused in 7 days."""
    await usage.write_pending(gateway)
    key = await _shrinkable(db, app, key_id)
    advised = (await usage.advice(db, key))["advice"]["permissions"]
    return await _shrink_dialog(request, db, viewer, app, key, list(advised))


@router.get("/shrink/preview")
async def shrink_preview(
    request: Request,
    db: DbSession,
    gateway: GatewayDep,
    app: CurrentApp,
    key_id: KeyId,
    permissions: PermissionsParam = None,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    """The preview again for the boxes ticked now."""
    await usage.write_pending(gateway)
    key = await _shrinkable(db, app, key_id)
    context = {"app": app, "key": keys.to_public(key)}
    context.update(await _preview_context(db, key, _chosen(permissions)))
    return render(request, "keys/_shrink_preview.html", context)


@router.post("/shrink")
async def shrink_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    permissions: PermissionsField = None,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    """Save the ticked set as an ordinary edit (audited): a preset when it is exactly one."""
    key = await _shrinkable(db, app, key_id)
    chosen = _chosen(permissions)
    try:
        if not chosen:
            raise InvalidPermissions("Select at least one permission")
        role, stored = usage.narrowest(frozenset(chosen))
        await keys.edit_key(db, actor=viewer.actor, key=key, role=role, permissions=stored)
    except (BadRequest, Forbidden, InvalidPermissions) as error:
        await db.rollback()
        key = await _shrinkable(db, app, key_id)
        return await _shrink_dialog(
            request,
            db,
            viewer,
            app,
            key,
            chosen,
            error=error.message,
            status_code=error.status_code,
        )
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Trigger": "keys-changed, close-modal"})
    return redirect(request, _detail_url(app, key_id))
