"""Who is calling a management route: a signed-in user, from a session token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from agentmark_gateway.api_keys.authenticate import parse_authorization
from agentmark_gateway.api_keys.keygen import PREFIX as KEY_PREFIX
from agentmark_gateway.audit.service import Actor
from agentmark_gateway.auth import service
from agentmark_gateway.auth.models import UserSession
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import Forbidden, Unauthorized
from agentmark_gateway.permissions.org_roles import Action, can
from agentmark_gateway.users.models import User


@dataclass
class SignedIn:
    user: User
    session: UserSession
    token: str

    @property
    def actor(self) -> Actor:
        return Actor(label=self.user.email, role=self.user.role, user_id=self.user.id)


def bearer_token(request: Request) -> str:
    """The session token of ``Authorization: Bearer <token>`` (401 for an API key)."""
    token = parse_authorization(request.headers.get("authorization"))
    if token.startswith(KEY_PREFIX):
        raise Unauthorized("API keys are not accepted on management routes")
    return token


async def current_user(request: Request, db: DbSession) -> SignedIn:
    token = bearer_token(request)
    found = await service.resolve(db, token)
    if found is None:
        raise Unauthorized()
    user, session = found
    return SignedIn(user=user, session=session, token=token)


CurrentUser = Annotated[SignedIn, Depends(current_user)]


class Allowed:
    """Dependency: the signed-in user's organization role permits ``action``."""

    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(self, signed_in: CurrentUser) -> SignedIn:
        if not can(signed_in.user.role, self.action):
            raise Forbidden(f"Your role '{signed_in.user.role}' cannot do this ({self.action})")
        return signed_in


def allowed(action: Action) -> Any:
    return Depends(Allowed(action))
