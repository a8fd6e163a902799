"""Sign-in sessions for the management API and the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.auth.models import LoginFailure, UserSession
from agentmark_gateway.auth.passwords import verify_password
from agentmark_gateway.auth.tokens import new_session_token, token_digest
from agentmark_gateway.db.base import UTCDateTime, utcnow
from agentmark_gateway.errors import RateLimited, Unauthorized
from agentmark_gateway.users.models import User
from agentmark_gateway.users.service import get_by_email

BAD_CREDENTIALS = "Invalid email or password"


async def _reserve_attempt(
    session: AsyncSession, email: str, *, max_failures: int, window: timedelta
) -> None:
    """Count this attempt before its password is checked, or raise 429.

    One statement adds the attempt and reads the total, so concurrent sign-ins
    for one email each see a different count: at most ``max_failures`` of them
    get their password checked within a window, however many arrive at once.
    A success clears the count; a failure leaves the attempt counted.
    """
    now = utcnow()
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    expired = LoginFailure.window_start <= literal(now - window, UTCDateTime)
    statement = (
        insert(LoginFailure)
        .values(email=email, count=1, window_start=now)
        .on_conflict_do_update(
            index_elements=[LoginFailure.email],
            set_={
                "count": case((expired, 1), else_=LoginFailure.count + 1),
                "window_start": case(
                    (expired, literal(now, UTCDateTime)), else_=LoginFailure.window_start
                ),
            },
        )
        .returning(LoginFailure.count, LoginFailure.window_start)
    )
    count, window_start = (await session.execute(statement)).one()
    # Committed now, before the slow password check, so the next attempt sees it.
    await session.commit()
    if count > max_failures:
        retry = int((window_start + window - now).total_seconds()) + 1
        raise RateLimited(
            "Too many failed sign-ins; try again later", headers={"Retry-After": str(retry)}
        )


async def login(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    ttl_seconds: int,
    max_failures: int,
    window_seconds: int,
) -> tuple[str, UserSession, User]:
    """Returns (raw token, session row, user); the attempt is counted before the check."""
    email = email.strip().lower()
    window = timedelta(seconds=window_seconds)
    await _reserve_attempt(session, email, max_failures=max_failures, window=window)
    user = await get_by_email(session, email)
    if user is None or not await verify_password(password, user.password_hash):
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    await session.execute(delete(LoginFailure).where(LoginFailure.email == email))
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
