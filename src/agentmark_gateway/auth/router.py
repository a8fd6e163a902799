from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.auth import service
from agentmark_gateway.auth.deps import CurrentUser
from agentmark_gateway.deps import DbSession
from agentmark_gateway.request_body import RequestBody
from agentmark_gateway.users.schemas import UserPublic

router = APIRouter(prefix="/v1/auth", tags=["Sign-in"], route_class=ApiRoute)


class LoginBody(RequestBody):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class LoginResult(BaseModel):
    token: str
    expires_at: datetime
    user: UserPublic


@router.post("/login", summary="Sign in; returns a session token for the management API")
async def login(
    body: LoginBody, request: Request, response: Response, db: DbSession
) -> dict[str, LoginResult]:
    settings = request.app.state.gateway.settings
    token, session, user = await service.login(
        db,
        email=body.email,
        password=body.password,
        ttl_seconds=settings.session_ttl_seconds,
        max_failures=settings.login_max_failures,
        window_seconds=settings.login_window_seconds,
    )
    response.headers["Cache-Control"] = "no-store"
    return {
        "data": LoginResult(
            token=token, expires_at=session.expires_at, user=UserPublic.model_validate(user)
        )
    }


@router.post("/logout", status_code=204, summary="End this session")
async def logout(signed_in: CurrentUser, db: DbSession) -> Response:
    await service.logout(db, signed_in.token)
    return Response(status_code=204)


@router.get("/me", summary="The signed-in user")
async def me(signed_in: CurrentUser) -> dict[str, UserPublic]:
    return {"data": UserPublic.model_validate(signed_in.user)}
