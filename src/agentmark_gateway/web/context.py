"""What every page inside an app shows: the breadcrumb's app, the switcher, the tabs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.apps import service as apps
from agentmark_gateway.apps.models import App
from agentmark_gateway.deps import DbSession
from agentmark_gateway.web.areas import AREAS, Crumb
from agentmark_gateway.web.session import CurrentViewer, Viewer
from agentmark_gateway.web.templating import is_htmx

SECTIONS = (
    ("api-keys", "API Keys"),
    ("retention", "Data retention"),
    ("audit-log", "Audit log"),
)


@dataclass(frozen=True)
class AppRef:
    """The breadcrumb's app as plain values (a rollback cannot expire them)."""

    id: str
    name: str


async def current_app(
    viewer: CurrentViewer, db: DbSession, app_id: Annotated[str, Path(max_length=64)]
) -> AppRef:
    """Check existence once: an unknown app is a 404 page for every route under it.

    Sign-in comes first, so a stranger learns nothing about which apps exist."""
    app = await apps.get_app(db, app_id)
    return AppRef(id=app.id, name=app.name)


CurrentApp = Annotated[AppRef, Depends(current_app)]


async def page_context(
    request: Request, db: AsyncSession, viewer: Viewer, app: AppRef | None, section: str
) -> dict[str, Any]:
    """The layout's data; htmx fragments skip the switcher's query."""
    all_apps: list[App] = []
    if not is_htmx(request):
        all_apps, _total = await apps.list_apps(db)
    return {
        "viewer": viewer,
        "app": app,
        "apps": all_apps,
        "section": section,
        "sections": SECTIONS,
    }


async def area_context(
    request: Request,
    db: AsyncSession,
    viewer: Viewer,
    app: AppRef,
    area: str,
    crumbs: list[Crumb] | None = None,
) -> dict[str, Any]:
    """The layout's data for a data page (traces, sessions, ...): the area's crumb,
    a link when ``crumbs`` go deeper, then ``crumbs``."""
    context = await page_context(request, db, viewer, app, "")
    trail: list[Crumb] = [(dict(AREAS)[area], f"/apps/{app.id}/{area}" if crumbs else None)]
    context.update(area=area, crumbs=trail + (crumbs or []))
    return context
