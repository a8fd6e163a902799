"""Apps: every key and every row of data belongs to exactly one."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys.changes import KeyChange
from agentmark_gateway.apps.models import App
from agentmark_gateway.apps.schemas import MAX_RETENTION_DAYS
from agentmark_gateway.audit.service import Actor, record
from agentmark_gateway.controls import check_plain
from agentmark_gateway.errors import BadRequest, Conflict, NotFound


def _duplicate(name: str) -> Conflict:
    return Conflict(f"An app named '{name}' already exists", code="duplicate_app_name")


def check_retention(days: int | None) -> int | None:
    """Days to keep traces: 0 (for ever) to 3650, or None for the gateway's default."""
    if days is not None and not 0 <= days <= MAX_RETENTION_DAYS:
        raise BadRequest(
            f"retention_days must be from 0 to {MAX_RETENTION_DAYS}, or null for the default"
        )
    return days


async def create_app(
    session: AsyncSession, *, actor: Actor, name: str, retention_days: int | None = None
) -> App:
    name = check_plain(name.strip(), "name")
    retention_days = check_retention(retention_days)
    if await session.scalar(select(App.id).where(App.name == name)):
        raise _duplicate(name)
    app = App(name=name, retention_days=retention_days)
    session.add(app)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _duplicate(name) from None
    record(
        session,
        actor=actor,
        action="app.create",
        target_type="app",
        target_id=app.id,
        app_id=app.id,
        details={"name": name, "retention_days": retention_days},
    )
    await session.commit()
    return app


async def list_apps(
    session: AsyncSession, *, limit: int = 1000, offset: int = 0
) -> tuple[list[App], int]:
    total = await session.scalar(select(func.count()).select_from(App)) or 0
    rows = await session.scalars(select(App).order_by(App.name).limit(limit).offset(offset))
    return list(rows), total


async def get_app(session: AsyncSession, app_id: str) -> App:
    app = await session.get(App, app_id)
    if app is None:
        raise NotFound("App not found", code="app_not_found")
    return app


async def find_app(session: AsyncSession, id_or_name: str) -> App:
    """By id, or by name (for the CLI)."""
    app = await session.get(App, id_or_name)
    if app is None:
        app = await session.scalar(select(App).where(App.name == id_or_name))
    if app is None:
        raise NotFound(f"No app with id or name '{id_or_name}'", code="app_not_found")
    return app


async def rename_app(session: AsyncSession, *, actor: Actor, app: App, name: str) -> App:
    name = check_plain(name.strip(), "name")
    old = app.name
    if name != old and await session.scalar(select(App.id).where(App.name == name)):
        raise _duplicate(name)
    app.name = name
    record(
        session,
        actor=actor,
        action="app.rename",
        target_type="app",
        target_id=app.id,
        app_id=app.id,
        details={"before": {"name": old}, "after": {"name": name}},
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _duplicate(name) from None
    return app


async def set_retention(
    session: AsyncSession, *, actor: Actor, app: App, retention_days: int | None
) -> App:
    """How long the app's traces are kept (``retention.py`` prunes the older ones)."""
    retention_days = check_retention(retention_days)
    old = app.retention_days
    app.retention_days = retention_days
    record(
        session,
        actor=actor,
        action="app.retention",
        target_type="app",
        target_id=app.id,
        app_id=app.id,
        details={
            "name": app.name,
            "before": {"retention_days": old},
            "after": {"retention_days": retention_days},
        },
    )
    await session.commit()
    return app


async def delete_app(session: AsyncSession, *, actor: Actor, app: App) -> None:
    """Deletes the app, its keys and all its data (foreign keys cascade)."""
    record(
        session,
        actor=actor,
        action="app.delete",
        target_type="app",
        target_id=app.id,
        app_id=app.id,
        details={"name": app.name},
    )
    session.add(KeyChange(app_id=app.id))
    await session.delete(app)
    await session.commit()
