"""Who is looking at a dashboard page: the user of the session cookie, or a sign-in redirect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from agentmark_gateway.audit.service import Actor
from agentmark_gateway.auth import service as auth
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import Forbidden
from agentmark_gateway.permissions.org_roles import Action, can
from agentmark_gateway.web.csrf import PRESESSION_COOKIE, SESSION_COOKIE, secure_cookies


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in user as plain values: a service's rollback cannot expire them."""

    id: str
    email: str
    role: str
    token: str

    @property
    def actor(self) -> Actor:
        return Actor(label=self.email, role=self.role, user_id=self.id)

    def can(self, action: Action | str) -> bool:
        return can(self.role, Action(action))


async def current_viewer(request: Request, db: DbSession) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    found = await auth.resolve(db, token) if token else None
    if found is None or token is None:
        raise SignInRequired()
    user, _session = found
    return Viewer(id=user.id, email=user.email, role=user.role, token=token)


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


class _Allowed:
    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, viewer: CurrentViewer) -> Viewer:
        if not viewer.can(self.action):
            raise Forbidden(f"Your role '{viewer.role}' cannot do this.")
        return viewer


def allowed(action: Action) -> Any:
    """Dependency: the signed-in user's organization role permits ``action`` (org_roles)."""
    return Depends(_Allowed(action))


def start(request: Request, response: Response, token: str) -> None:
    """Put a fresh session token in the cookie; the pre-session has done its job."""
    settings = request.app.state.gateway.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    response.delete_cookie(PRESESSION_COOKIE, path="/")


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
