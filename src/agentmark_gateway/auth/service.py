"""Sign-in sessions for the management API and the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.auth.models import LoginFailure, UserSession
from agentmark_gateway.auth.passwords import verify_password
from agentmark_gateway.auth.tokens import new_session_token, token_digest
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import RateLimited, Unauthorized
from agentmark_gateway.users.models import User
from agentmark_gateway.users.service import get_by_email

BAD_CREDENTIALS = "Invalid email or password"


async def _throttle(
    session: AsyncSession, email: str, *, max_failures: int, window: timedelta
) -> LoginFailure | None:
    failure = await session.get(LoginFailure, email)
    now = utcnow()
    if failure is not None and failure.window_start + window <= now:
        failure.count = 0
        failure.window_start = now
    if failure is not None and failure.count >= max_failures:
        retry = int((failure.window_start + window - now).total_seconds()) + 1
        raise RateLimited(
            "Too many failed sign-ins; try again later", headers={"Retry-After": str(retry)}
        )
    return failure


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    ttl_seconds: int,
    max_failures: int,
    window_seconds: int,
) -> tuple[str, UserSession, User]:
    """Returns (raw token, session row, user); commits either the session or the failure."""
    email = email.strip().lower()
    window = timedelta(seconds=window_seconds)
    failure = await _throttle(session, email, max_failures=max_failures, window=window)
    user = await get_by_email(session, email)
    if user is None or not await verify_password(password, user.password_hash):
        if failure is None:
            failure = LoginFailure(email=email, count=0, window_start=utcnow())
            session.add(failure)
        failure.count += 1
        await session.commit()
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    if failure is not None:
        await session.delete(failure)
    token = new_session_token()
    row = UserSession(
        token_digest=token_digest(token),
        user_id=user.id,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.commit()
    return token, row, user


async def start_session(session: AsyncSession, *, user: User, ttl_seconds: int) -> str:
    token = new_session_token()
    session.add(
        UserSession(
            token_digest=token_digest(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def resolve(session: AsyncSession, token: str) -> tuple[User, UserSession] | None:
    row = await session.scalar(
        select(UserSession).where(UserSession.token_digest == token_digest(token))
    )
    if row is None or row.expires_at <= utcnow():
        return None
    user = await session.get(User, row.user_id)
    if user is None:
        return None
    return user, row


async def logout(session: AsyncSession, token: str) -> None:
    await session.execute(
        delete(UserSession).where(UserSession.token_digest == token_digest(token))
    )
    await session.commit()


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> None:
    await session.execute(delete(UserSession).where(UserSession.expires_at <= (now or utcnow())))
