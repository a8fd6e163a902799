"""The front door and apps: ``/`` goes to the first app; owners and admins add apps
and set how long an app's traces are kept."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from agentmark_gateway.apps import service as apps
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import AppRef, CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import CurrentViewer, Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def keys_url(app_id: str) -> str:
    return f"/apps/{app_id}/settings/api-keys"


@router.get("/")
async def home(request: Request, db: DbSession, viewer: CurrentViewer) -> Response:
    found, _total = await apps.list_apps(db, limit=1)
    if found:
        return redirect(request, keys_url(found[0].id))
    context = await page_context(request, db, viewer, None, "")
    return render(request, "apps/empty.html", context)


@router.get("/apps/new")
async def new_app_form(
    request: Request, db: DbSession, viewer: Viewer = allowed(Action.APPS_MANAGE)
) -> Response:
    context = await page_context(request, db, viewer, None, "")
    return render(request, "apps/new.html", {**context, "name": "", "error": None})


@router.post("/apps")
async def create_app(
    request: Request,
    db: DbSession,
    name: Annotated[str, Form(max_length=255)] = "",
    viewer: Viewer = allowed(Action.APPS_MANAGE),
) -> Response:
    try:
        if not name.strip():
            raise ApiError("Give the app a name")
        app = await apps.create_app(db, actor=viewer.actor, name=name)
    except ApiError as error:
        context = await page_context(request, db, viewer, None, "")
        context.update(name=name, error=error.message)
        return render(request, "apps/new.html", context, status_code=error.status_code)
    return redirect(request, keys_url(app.id))


@router.get("/apps/{app_id}")
@router.get("/apps/{app_id}/settings")
async def app_home(request: Request, app: CurrentApp) -> Response:
    return redirect(request, keys_url(app.id))


def retention_url(app_id: str) -> str:
    return f"/apps/{app_id}/settings/retention"


async def _retention_page(
    request: Request,
    db: DbSession,
    viewer: Viewer,
    app: AppRef,
    *,
    value: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await page_context(request, db, viewer, app, "retention")
    context.update(
        value=value,
        error=error,
        saved=request.query_params.get("saved") == "1",
        default_days=request.app.state.gateway.settings.retention_days,
    )
    return render(request, "apps/retention.html", context, status_code=status_code)


@router.get("/apps/{app_id}/settings/retention")
async def retention_page(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.APPS_READ)
) -> Response:
    days = (await apps.get_app(db, app.id)).retention_days
    return await _retention_page(request, db, viewer, app, value="" if days is None else str(days))


@router.post("/apps/{app_id}/settings/retention")
async def set_retention(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    retention_days: Annotated[str, Form(max_length=16)] = "",
    viewer: Viewer = allowed(Action.APPS_MANAGE),
) -> Response:
    text = retention_days.strip()
    try:
        if text and not (text.isascii() and text.isdigit()):
            raise ApiError("Give a whole number of days, or leave it empty for the default")
        await apps.set_retention(
            db,
            actor=viewer.actor,
            app=await apps.get_app(db, app.id),
            retention_days=int(text) if text else None,
        )
    except ApiError as error:
        return await _retention_page(
            request, db, viewer, app, value=text, error=error.message, status_code=400
        )
    return redirect(request, retention_url(app.id) + "?saved=1")
