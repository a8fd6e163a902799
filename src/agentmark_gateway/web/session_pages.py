"""Sessions: the list, and one session's traces in the order they ran (traces.service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import NotFound
from agentmark_gateway.pagination import Page
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.traces import service as traces
from agentmark_gateway.traces.filters import SessionFilters, Sort, TraceFilters
from agentmark_gateway.web.context import CurrentApp, area_context
from agentmark_gateway.web.paging import PageNumber, has_more, offset
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(prefix="/apps/{app_id}/sessions", route_class=WebRoute)

PAGE_SIZE = 50


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    search: Annotated[str, Query(max_length=255)] = "",
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    found, total = await traces.list_sessions(
        db,
        app_id=app.id,
        filters=SessionFilters(search=search.strip() or None),
        page=Page(limit=PAGE_SIZE, offset=offset(page, PAGE_SIZE)),
    )
    context = await area_context(request, db, viewer, app, "sessions")
    context.update(
        sessions=found,
        total=total,
        search=search,
        page=page,
        has_more=has_more(page, PAGE_SIZE, total),
    )
    return render(request, "sessions/index.html", context)


@router.get("/{session_id:path}")
async def session_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    session_id: Annotated[str, Path(max_length=255)],
    page: PageNumber = 1,
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    # Oldest first: a session reads as the conversation it was.
    found, total = await traces.list_traces(
        db,
        app_id=app.id,
        filters=TraceFilters(session_id=session_id, sort=Sort("start_time", descending=False)),
        page=Page(limit=PAGE_SIZE, offset=offset(page, PAGE_SIZE)),
    )
    if total == 0:
        raise NotFound(f"Session '{session_id}' not found", code="session_not_found")
    context = await area_context(request, db, viewer, app, "sessions", [(session_id, None)])
    context.update(
        session_id=session_id,
        traces=found,
        total=total,
        page=page,
        first=offset(page, PAGE_SIZE),
        has_more=has_more(page, PAGE_SIZE, total),
    )
    return render(request, "sessions/session.html", context)
