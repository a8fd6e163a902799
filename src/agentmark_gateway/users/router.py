from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.auth.deps import SignedIn, allowed
from agentmark_gateway.deps import DbSession
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.users import service
from agentmark_gateway.users.models import User
from agentmark_gateway.users.schemas import MemberInvite, MemberInvited, MemberPublic, MemberUpdate

router = APIRouter(prefix="/v1/members", tags=["Members"], route_class=ApiRoute)

DUPLICATE_EMAIL: dict[int | str, dict[str, Any]] = {
    409: {"description": "A member with this email exists"}
}
LAST_OWNER: dict[int | str, dict[str, Any]] = {
    409: {"description": "The organization would be left without an owner"}
}


def member(user: User) -> MemberPublic:
    return MemberPublic(
        id=user.id,
        email=user.email,
        role=user.role,
        created_at=user.created_at,
        pending=user.password_hash is None,
    )


@router.get("", summary="List members")
async def list_members(
    db: DbSession, page: PageDep, user: SignedIn = allowed(Action.MEMBERS_READ)
) -> dict[str, Any]:
    users = await service.list_users(db)
    rows = users[page.offset : page.offset + page.limit]
    return paginated([member(u).model_dump(mode="json") for u in rows], len(users), page)


@router.post(
    "",
    status_code=201,
    summary="Invite a member (returns a one-time link)",
    responses=DUPLICATE_EMAIL,
)
async def invite_member(
    body: MemberInvite,
    request: Request,
    response: Response,
    db: DbSession,
    user: SignedIn = allowed(Action.MEMBERS_MANAGE),
) -> dict[str, MemberInvited]:
    invited, token = await service.invite(db, actor=user.actor, email=body.email, role=body.role)
    base = request.app.state.gateway.settings.base_url
    response.headers["Cache-Control"] = "no-store"
    return {
        "data": MemberInvited(**member(invited).model_dump(), invite_url=f"{base}/invite/{token}")
    }


@router.patch("/{user_id}", summary="Change a member's role", responses=LAST_OWNER)
async def change_role(
    user_id: str, body: MemberUpdate, db: DbSession, user: SignedIn = allowed(Action.MEMBERS_MANAGE)
) -> dict[str, MemberPublic]:
    target = await service.get_user(db, user_id)
    await service.change_role(db, actor=user.actor, user=target, role=body.role)
    return {"data": member(target)}


@router.delete("/{user_id}", status_code=204, summary="Remove a member", responses=LAST_OWNER)
async def remove_member(
    user_id: str, db: DbSession, user: SignedIn = allowed(Action.MEMBERS_MANAGE)
) -> Response:
    target = await service.get_user(db, user_id)
    await service.remove_user(db, actor=user.actor, user=target)
    return Response(status_code=204)
