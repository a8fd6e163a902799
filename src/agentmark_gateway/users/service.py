"""Users of the organization: create, list, change role, remove, invite."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.audit.service import Actor, record
from agentmark_gateway.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from agentmark_gateway.auth.tokens import new_link_token, token_digest
from agentmark_gateway.controls import check_plain
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import BadRequest, Conflict, Forbidden, NotFound
from agentmark_gateway.permissions.org_roles import OrgRole
from agentmark_gateway.users.models import OneTimeToken, User

INVITE_TTL = timedelta(days=7)
SETUP_TTL = timedelta(days=1)


def normalize_email(email: str) -> str:
    email = check_plain(email.strip().lower(), "email")
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise BadRequest("A valid email address is required", code="invalid_email")
    return email


def check_role(role: str) -> OrgRole:
    try:
        return OrgRole(role)
    except ValueError:
        raise BadRequest(
            f"Unknown role '{role}': use owner, admin, write or read", code="invalid_role"
        ) from None


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            f"Password must be at least {MIN_PASSWORD_LENGTH} characters", code="weak_password"
        )


async def count_users(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(User)) or 0


async def create_user(
    session: AsyncSession, *, email: str, role: str, password: str | None
) -> User:
    email = normalize_email(email)
    check_role(role)
    if password is not None:
        check_password(password)
    user = User(
        email=email, role=role, password_hash=await hash_password(password) if password else None
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"A user with email {email} exists", code="duplicate_user") from None
    return user


async def invite(session: AsyncSession, *, actor: Actor, email: str, role: str) -> tuple[User, str]:
    """Create a pending member and a one-time link that sets their password.

    Returns the member and the raw link token; the caller builds the URL, since
    the API and the dashboard each know their own base address.
    """
    check_role(role)
    if role == OrgRole.OWNER and actor.role != OrgRole.OWNER:
        raise Forbidden("Only the owner can invite another owner")
    invited = await create_user(session, email=email, role=role, password=None)
    token = await issue_link(session, purpose="invite", user_id=invited.id, ttl=INVITE_TTL)
    record(
        session,
        actor=actor,
        action="member.invite",
        target_type="user",
        target_id=invited.id,
        app_id=None,
        details={"email": invited.email, "role": invited.role},
    )
    await session.commit()
    return invited, token


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return user


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.created_at, User.email)))


async def change_role(session: AsyncSession, *, actor: Actor, user: User, role: str) -> User:
    new_role = check_role(role)
    if OrgRole.OWNER in (user.role, new_role) and actor.role != OrgRole.OWNER:
        raise Forbidden("Only the owner can grant or change the owner role")
    if user.role == OrgRole.OWNER and new_role != OrgRole.OWNER:
        owners = await session.scalar(
            select(func.count()).select_from(User).where(User.role == OrgRole.OWNER)
        )
        if (owners or 0) <= 1:
            raise Conflict("The organization needs an owner", code="last_owner")
    before = user.role
    user.role = new_role
    record(
        session,
        actor=actor,
        action="member.role_change",
        target_type="user",
        target_id=user.id,
        app_id=None,
        details={"email": user.email, "before": before, "after": user.role},
    )
    await session.commit()
    return user


async def remove_user(session: AsyncSession, *, actor: Actor, user: User) -> None:
    if user.role == OrgRole.OWNER and actor.role != OrgRole.OWNER:
        raise Forbidden("Only an owner can remove the owner")
    if user.role == OrgRole.OWNER:
        owners = await session.scalar(
            select(func.count()).select_from(User).where(User.role == OrgRole.OWNER)
        )
        if (owners or 0) <= 1:
            raise Conflict("The organization needs an owner", code="last_owner")
    record(
        session,
        actor=actor,
        action="member.remove",
        target_type="user",
        target_id=user.id,
        app_id=None,
        details={"email": user.email, "role": user.role},
    )
    await session.delete(user)
    await session.commit()


async def issue_link(
    session: AsyncSession, *, purpose: str, user_id: str | None, ttl: timedelta
) -> str:
    """A one-time link token (setup of the first owner, or an invitation); returns the raw token."""
    token = new_link_token()
    session.add(
        OneTimeToken(
            token_digest=token_digest(token),
            purpose=purpose,
            user_id=user_id,
            expires_at=utcnow() + ttl,
        )
    )
    await session.flush()
    return token


async def find_link(session: AsyncSession, *, token: str, purpose: str) -> OneTimeToken | None:
    link = await session.scalar(
        select(OneTimeToken).where(
            OneTimeToken.token_digest == token_digest(token), OneTimeToken.purpose == purpose
        )
    )
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    return link


async def spend_link(session: AsyncSession, *, link: OneTimeToken) -> None:
    """Mark a one-time link used; of two requests racing with one link, one wins."""
    result = await session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.id == link.id, OneTimeToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise NotFound("This link has already been used", code="link_used")


async def set_password(session: AsyncSession, *, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = await hash_password(password)
