"""Settings > Audit log: the app's key and app events, newest first, with permission diffs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from agentmark_gateway.audit import service as audit
from agentmark_gateway.audit.models import AuditEvent
from agentmark_gateway.deps import DbSession
from agentmark_gateway.permissions.catalog import ROLES
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import full_time, render

router = APIRouter(prefix="/apps/{app_id}/settings/audit-log", route_class=WebRoute)

PAGE_SIZE = 50

ACTIONS = {
    "api_key.create": "Created API key",
    "api_key.update": "Edited API key",
    "api_key.roll": "Rolled API key",
    "api_key.delete": "Deleted API key",
    "app.create": "Created app",
    "app.rename": "Renamed app",
    "app.retention": "Changed data retention",
    "app.key_policy": "Changed key policy",
    "app.delete": "Deleted app",
}


@dataclass
class Entry:
    """One event as the table shows it: what happened to what, and what changed."""

    event: AuditEvent
    label: str
    target: str
    granted: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _role(value: Any) -> str:
    role = ROLES.get(str(value))
    return role.label if role else str(value)


def _when(value: Any) -> str:
    if not value:
        return "never"
    try:
        return full_time(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _change_note(name: str, change: dict[str, Any]) -> str | None:
    before, after = change.get("before"), change.get("after")
    if name == "name":
        return f"Renamed from “{before}” to “{after}”"
    if name == "role":
        return f"Role {_role(before)} → {_role(after)}"
    if name == "expires_at":
        return f"Expiry {_when(before)} → {_when(after)}"
    return None  # permissions show as chips


def describe(event: AuditEvent) -> Entry:
    details = event.details or {}
    entry = Entry(
        event=event,
        label=ACTIONS.get(event.action, event.action),
        target=str(details.get("name") or event.target_id or ""),
    )
    if event.action == "api_key.create":
        entry.notes.append(f"Role {_role(details.get('role'))}")
        entry.granted = list(details.get("permissions") or [])
        if details.get("expires_at"):
            entry.notes.append(f"Expires {_when(details['expires_at'])}")
    elif event.action == "api_key.update":
        entry.added = list(details.get("permissions_added") or [])
        entry.removed = list(details.get("permissions_removed") or [])
        for name, change in (details.get("changes") or {}).items():
            note = _change_note(name, change) if isinstance(change, dict) else None
            if note:
                entry.notes.append(note)
        if not (entry.added or entry.removed or entry.notes):
            entry.notes.append("Saved without changes")
    elif event.action == "api_key.roll":
        grace = int(details.get("grace_seconds") or 0)
        ends = _when(details.get("previous_key_expires_at"))
        entry.notes.append(f"Old key works until {ends}" if grace else "Old key deleted at once")
    elif event.action == "api_key.delete":
        if details.get("key_prefix"):
            entry.notes.append(f"Key {details['key_prefix']}")
    elif event.action == "app.rename":
        before = (details.get("before") or {}).get("name")
        after = (details.get("after") or {}).get("name")
        entry.target = str(after or "")
        entry.notes.append(f"Renamed from “{before}” to “{after}”")
    elif event.action == "app.retention":
        before = (details.get("before") or {}).get("retention_days")
        after = (details.get("after") or {}).get("retention_days")
        entry.notes.append(f"Retention {_days(before)} → {_days(after)}")
    elif event.action == "app.key_policy":
        entry.notes.append(_key_policy_note(details.get("after") or {}))
    return entry


def _key_policy_note(policy: dict[str, Any]) -> str:
    days = policy.get("key_max_lifetime_days")
    if days:
        return f"Keys expire within {days} days"
    return "Keys must expire" if policy.get("key_expiry_required") else "No key policy"


def _days(value: Any) -> str:
    if value is None:
        return "default"
    return f"{value} days" if value else "for ever"


@router.get("")
async def audit_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    viewer: Viewer = allowed(Action.AUDIT_READ),
) -> Response:
    events, total = await audit.list_events(
        db, app_id=app.id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    context = await page_context(request, db, viewer, app, "audit-log")
    context.update(
        entries=[describe(e) for e in events],
        total=total,
        page=page,
        has_older=page * PAGE_SIZE < total,
    )
    return render(request, "audit/index.html", context)
