"""Recording and reading the audit log. Values of keys never reach it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.audit.models import AuditEvent
from agentmark_gateway.pagination import bounded_count


@dataclass(frozen=True)
class Actor:
    """Who made a change: a signed-in user, or the operator through the CLI."""

    label: str
    role: str
    user_id: str | None = None


CLI_ACTOR = Actor(label="cli", role="owner")


def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    app_id: str | None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the caller's transaction: it commits, or vanishes, with the change."""
    event = AuditEvent(
        actor=actor.label,
        action=action,
        target_type=target_type,
        target_id=target_id,
        app_id=app_id,
        details=details or {},
    )
    session.add(event)
    return event


async def list_events(
    session: AsyncSession,
    *,
    app_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    target_ids: Collection[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """A page of events, newest first, and how many match; ``target_ids``: only the
    events about these records (one key's history)."""
    query = select(AuditEvent)
    if app_id is not None:
        query = query.where(AuditEvent.app_id == app_id)
    if target_ids is not None:
        query = query.where(AuditEvent.target_id.in_(list(target_ids)))
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.created_at >= since)
    total = await session.scalar(bounded_count(query, offset)) or 0
    rows = await session.scalars(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id).limit(limit).offset(offset)
    )
    return list(rows), total
