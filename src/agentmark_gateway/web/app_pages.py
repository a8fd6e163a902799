"""The front door and apps: ``/`` goes to the first app; owners and admins add apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from agentmark_gateway.apps import service as apps
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import CurrentApp, page_context
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
