"""Sign in and out, the first-run setup link and invitation links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, Response

from agentmark_gateway.auth import service as auth
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError, Conflict, RateLimited, Unauthorized
from agentmark_gateway.permissions.org_roles import OrgRole
from agentmark_gateway.users import service as users
from agentmark_gateway.users.models import OneTimeToken, User
from agentmark_gateway.web import session
from agentmark_gateway.web.csrf import SESSION_COOKIE
from agentmark_gateway.web.route import WebRoute, local_path, redirect
from agentmark_gateway.web.templating import render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]
LinkToken = Annotated[str, Path(max_length=128)]


@router.get("/login")
async def login_page(request: Request, db: DbSession, next: str | None = None) -> Response:
    no_users = await users.count_users(db) == 0
    return render(request, "auth/login.html", {"next": local_path(next), "no_users": no_users})


@router.post("/login")
async def login(
    request: Request,
    db: DbSession,
    email: Email,
    password: Password,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    settings = request.app.state.gateway.settings
    try:
        token, _row, _user = await auth.login(
            db,
            email=email,
            password=password,
            ttl_seconds=settings.session_ttl_seconds,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
    except (Unauthorized, RateLimited) as error:
        context = {
            "next": local_path(next),
            "no_users": False,
            "email": email,
            "error": error.message,
        }
        return render(
            request,
            "auth/login.html",
            context,
            status_code=error.status_code,
            headers=error.headers,
        )
    # The browser's old session, if any, ends here: a sign-in always gets a new id.
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await auth.logout(db, old)
    response = redirect(request, local_path(next))
    session.start(request, response, token)
    return response


@router.post("/logout")
async def logout(request: Request, db: DbSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await auth.logout(db, token)
    response = redirect(request, "/login")
    session.end(response)
    return response


async def _setup_link(db: DbSession, token: str) -> OneTimeToken | None:
    """A setup link works only while nobody has an account."""
    if await users.count_users(db) > 0:
        return None
    return await users.find_link(db, token=token, purpose="setup")


def _dead_link(request: Request) -> Response:
    return render(request, "auth/link_dead.html", status_code=410)


@router.get("/setup/{token}")
async def setup_page(request: Request, db: DbSession, token: LinkToken) -> Response:
    if await _setup_link(db, token) is None:
        return _dead_link(request)
    return render(request, "auth/setup.html", {"token": token})


@router.post("/setup/{token}")
async def setup(
    request: Request, db: DbSession, token: LinkToken, email: Email, password: Password
) -> Response:
    link = await _setup_link(db, token)
    if link is None:
        return _dead_link(request)
    try:
        await users.spend_link(db, link=link)
        owner = await users.create_user(db, email=email, role=OrgRole.OWNER, password=password)
    except Conflict:
        return _dead_link(request)
    except ApiError as error:
        await db.rollback()
        context = {"token": token, "email": email, "error": error.message}
        return render(request, "auth/setup.html", context, status_code=error.status_code)
    return await _signed_in(request, db, owner)


async def _invite(db: DbSession, token: str) -> tuple[OneTimeToken, User] | None:
    link = await users.find_link(db, token=token, purpose="invite")
    if link is None or link.user_id is None:
        return None
    invited = await db.get(User, link.user_id)
    if invited is None or invited.password_hash is not None:
        return None
    return link, invited


@router.get("/invite/{token}")
async def invite_page(request: Request, db: DbSession, token: LinkToken) -> Response:
    found = await _invite(db, token)
    if found is None:
        return _dead_link(request)
    return render(request, "auth/invite.html", {"token": token, "email": found[1].email})


@router.post("/invite/{token}")
async def accept_invite(
    request: Request, db: DbSession, token: LinkToken, password: Password
) -> Response:
    found = await _invite(db, token)
    if found is None:
        return _dead_link(request)
    link, invited = found
    email = invited.email
    try:
        await users.spend_link(db, link=link)
        await users.set_password(db, user=invited, password=password)
    except ApiError as error:
        await db.rollback()
        context = {"token": token, "email": email, "error": error.message}
        return render(request, "auth/invite.html", context, status_code=error.status_code)
    return await _signed_in(request, db, invited)


async def _signed_in(request: Request, db: DbSession, user: User) -> Response:
    settings = request.app.state.gateway.settings
    token = await auth.start_session(db, user=user, ttl_seconds=settings.session_ttl_seconds)
    await db.commit()
    response = redirect(request, "/")
    session.start(request, response, token)
    return response
