"""Organization settings > Members: everyone may look; owners and admins invite, change
roles, remove.

Members belong to the organization, not to an app, so the pages live at
``/settings/members``; the old address under an app's settings redirects there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError
from agentmark_gateway.permissions.org_roles import Action, OrgRole
from agentmark_gateway.users import service as users
from agentmark_gateway.web.context import CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

MEMBERS_URL = "/settings/members"

router = APIRouter(prefix=MEMBERS_URL, route_class=WebRoute)
# Where the page was when it sat under each app's settings: bookmarks still arrive.
old_router = APIRouter(prefix="/apps/{app_id}/settings/members", route_class=WebRoute)

UserId = Annotated[str, Path(max_length=64)]
RoleField = Annotated[str, Form(max_length=16)]


def assignable_roles(viewer: Viewer) -> list[str]:
    """The roles the viewer can hand out; only an owner makes owners (users.service agrees)."""
    if viewer.role == OrgRole.OWNER:
        return [role.value for role in OrgRole]
    return [role.value for role in OrgRole if role != OrgRole.OWNER]


async def _list_context(db: DbSession, viewer: Viewer) -> dict[str, Any]:
    return {"members": await users.list_users(db), "assignable": assignable_roles(viewer)}


def _changed(request: Request) -> Response:
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Trigger": "members-changed, close-modal"})
    return redirect(request, MEMBERS_URL)


@router.get("")
async def members_page(
    request: Request, db: DbSession, viewer: Viewer = allowed(Action.MEMBERS_READ)
) -> Response:
    context = await page_context(request, db, viewer, None, "members")
    context.update(await _list_context(db, viewer))
    return render(request, "members/index.html", context)


@router.get("/rows")
async def member_rows(
    request: Request, db: DbSession, viewer: Viewer = allowed(Action.MEMBERS_READ)
) -> Response:
    context = {"viewer": viewer, "app": None, **await _list_context(db, viewer)}
    return render(request, "members/_list.html", context)


async def _invite_form(
    request: Request,
    db: DbSession,
    viewer: Viewer,
    *,
    email: str = "",
    role: str = OrgRole.READ,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = await page_context(request, db, viewer, None, "members")
    context.update(email=email, role=role, errors=errors or {}, assignable=assignable_roles(viewer))
    return render(request, "members/invite.html", context, status_code=status_code)


@router.get("/invite")
async def invite_form(
    request: Request,
    db: DbSession,
    viewer: Viewer = allowed(Action.MEMBERS_MANAGE),
) -> Response:
    return await _invite_form(request, db, viewer)


@router.post("")
async def invite(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form(max_length=320)] = "",
    role: RoleField = OrgRole.READ,
    viewer: Viewer = allowed(Action.MEMBERS_MANAGE),
) -> Response:
    try:
        invited, token = await users.invite(db, actor=viewer.actor, email=email, role=role)
    except ApiError as error:
        field = "role" if error.code in ("invalid_role", "forbidden") else "email"
        return await _invite_form(
            request,
            db,
            viewer,
            email=email,
            role=role,
            errors={field: error.message},
            status_code=error.status_code,
        )
    base = request.app.state.gateway.settings.public_url or str(request.base_url)
    context = await page_context(request, db, viewer, None, "members")
    context.update(invited=invited, invite_url=f"{base.rstrip('/')}/invite/{token}")
    return render(
        request, "members/invited.html", context, headers={"HX-Trigger": "members-changed"}
    )


@router.post("/{user_id}/role")
async def change_role(
    request: Request,
    db: DbSession,
    user_id: UserId,
    role: RoleField,
    viewer: Viewer = allowed(Action.MEMBERS_MANAGE),
) -> Response:
    target = await users.get_user(db, user_id)
    await users.change_role(db, actor=viewer.actor, user=target, role=role)
    return _changed(request)


@router.get("/{user_id}/remove")
async def remove_form(
    request: Request,
    db: DbSession,
    user_id: UserId,
    viewer: Viewer = allowed(Action.MEMBERS_MANAGE),
) -> Response:
    context = await page_context(request, db, viewer, None, "members")
    context.update(member=await users.get_user(db, user_id))
    return render(request, "members/remove.html", context)


@router.post("/{user_id}/remove")
async def remove(
    request: Request,
    db: DbSession,
    user_id: UserId,
    viewer: Viewer = allowed(Action.MEMBERS_MANAGE),
) -> Response:
    target = await users.get_user(db, user_id)
    await users.remove_user(db, actor=viewer.actor, user=target)
    return _changed(request)


@old_router.get("")
async def old_members_page(request: Request, app: CurrentApp) -> Response:
    return redirect(request, MEMBERS_URL)
