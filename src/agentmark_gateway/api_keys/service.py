"""The key lifecycle: create, list, show, edit, delete, roll.

Every change is written with its audit event and a ``KeyChange`` row in one
transaction, so caches in every process learn of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import keygen, policy
from agentmark_gateway.api_keys.changes import KeyChange
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.schemas import MAX_RATE_LIMIT_PER_MINUTE, ApiKeyPublic
from agentmark_gateway.audit.service import Actor, record
from agentmark_gateway.controls import check_plain
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import BadRequest, Conflict, Forbidden, NotFound
from agentmark_gateway.netaccess import normalize_cidrs
from agentmark_gateway.permissions.catalog import ordered, resolve_permissions, resolve_role
from agentmark_gateway.permissions.org_roles import grantable_permissions

# Keys expiring within this long are flagged ``expiring_soon`` in lists and details.
EXPIRING_SOON = timedelta(days=7)
# The furthest ahead a key may expire: ten years (further is no expiry at all, in practice).
MAX_EXPIRY = timedelta(days=3653)
# How lists sort: the API's ``sort`` values ("-" first: descending) and the columns.
SORTS = ("name", "-name", "created", "-created", "last_used", "-last_used")
DEFAULT_SORT = "-created"
# The suffix a rolled key's name takes until it ends (names are unique among live keys).
_ROLLED_SUFFIX = re.compile(r" \(rolled \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$")


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    plaintext: str


def to_public(key: ApiKey) -> ApiKeyPublic:
    expiring = key.expires_at is not None and key.expires_at - utcnow() <= EXPIRING_SOON
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        app_id=key.app_id,
        role=key.role,
        permissions=ordered(resolve_permissions(key.role, key.permissions)),
        key_prefix=key.display_prefix,
        created_by=key.created_by,
        created_at=key.created_at,
        updated_at=key.updated_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        expiring_soon=expiring,
        rate_limit_per_minute=key.rate_limit_per_minute,
        allowed_cidrs=list(key.allowed_cidrs) if key.allowed_cidrs else None,
        rolled_to=key.rolled_to,
    )


def base_name(key: ApiKey | ApiKeyPublic) -> str:
    """A rolled key's name without the suffix its roll gave it (its successor has the name)."""
    if key.rolled_to is None:
        return key.name
    return _ROLLED_SUFFIX.sub("", key.name)


def _duplicate(name: str) -> Conflict:
    return Conflict(
        f"An API key named '{name}' already exists in this app", code="duplicate_api_key_name"
    )


def _check_grantable(actor: Actor, role: str, permissions: list[str]) -> None:
    allowed = grantable_permissions(actor.role)
    for permission in ordered(resolve_permissions(role, permissions)):
        if permission not in allowed:
            raise Forbidden(
                f"Your role cannot grant the permission '{permission}'",
                required_permission=permission,
            )


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    """The expiry in UTC: in the future, at most ``MAX_EXPIRY`` ahead (so never overflowing)."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise BadRequest("expires_at needs a time zone, e.g. 2027-01-01T00:00:00Z")
    moment: datetime | None
    try:
        moment = expires_at.astimezone(UTC)
    except OverflowError:
        # Only the calendar's first and last day can fall off its ends in UTC.
        moment = datetime.min.replace(tzinfo=UTC) if expires_at.year == 1 else None
    now = utcnow()
    if moment is None or moment > now + MAX_EXPIRY:
        raise BadRequest(
            f"expires_at must be at most {MAX_EXPIRY.days // 365} years ahead",
            code="invalid_expiry",
        )
    if moment <= now:
        raise BadRequest("expires_at must be in the future", code="invalid_expiry")
    return moment


def _check_retirement(key: ApiKey, expires_at: datetime | None) -> None:
    """A rolled key's end is final: an edit may bring it forward, never clear or extend it."""
    if key.rolled_to is None or key.expires_at is None:
        return
    if expires_at is None or expires_at > key.expires_at:
        raise BadRequest(
            "This key was rolled: its expiry can be brought forward but not cleared or extended",
            code="invalid_expiry",
        )


def _check_rate_limit(value: int | None) -> int | None:
    """A key's own requests-per-minute limit; None or 0 means the gateway default."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("rate_limit_per_minute must be a whole number", code="invalid_rate_limit")
    if value < 0 or value > MAX_RATE_LIMIT_PER_MINUTE:
        raise BadRequest(
            f"rate_limit_per_minute must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE} "
            "(or null for the gateway default)",
            code="invalid_rate_limit",
        )
    return value


def _check_cidrs(values: list[str] | None) -> list[str] | None:
    """A key's IP allowlist, canonical; None or empty means any address."""
    if not values:
        return None
    try:
        return normalize_cidrs(values)
    except ValueError as exc:
        raise BadRequest(f"Invalid allowed_cidrs: {exc}", code="invalid_allowed_cidrs") from None


async def _name_taken(
    session: AsyncSession, app_id: str, name: str, except_id: str | None = None
) -> bool:
    query = select(ApiKey.id).where(
        ApiKey.app_id == app_id, ApiKey.name == name, ApiKey.deleted_at.is_(None)
    )
    if except_id is not None:
        query = query.where(ApiKey.id != except_id)
    return await session.scalar(query) is not None


def mint(
    *,
    pepper: bytes,
    app_id: str,
    name: str,
    role: str,
    permissions: list[str],
    created_by: str,
    expires_at: datetime | None,
    rate_limit_per_minute: int | None = None,
    allowed_cidrs: list[str] | None = None,
) -> NewKey:
    """A new key row, not yet added to a session, and its value: no checks, no audit
    record (``create_key`` and ``roll_key`` do both; tests use it to seed many keys)."""
    plaintext = keygen.generate()
    now = utcnow()
    key = ApiKey(
        app_id=app_id,
        name=name,
        role=role,
        permissions=permissions,
        digest=keygen.digest(plaintext, pepper),
        display_prefix=keygen.display_prefix(plaintext),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_cidrs=allowed_cidrs,
    )
    return NewKey(key=key, plaintext=plaintext)


async def create_key(
    session: AsyncSession,
    *,
    actor: Actor,
    pepper: bytes,
    app_id: str,
    name: str,
    role: str | None,
    permissions: list[str] | None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    allowed_cidrs: list[str] | None = None,
) -> NewKey:
    name = check_plain(name.strip(), "name")
    if not name:
        raise BadRequest("Name is required", code="invalid_request_body")
    role, stored = resolve_role(role, permissions)
    _check_grantable(actor, role, stored)
    expires_at = _check_expiry(expires_at)
    policy.check_expiry(await policy.load(session, app_id), expires_at)
    rate_limit_per_minute = _check_rate_limit(rate_limit_per_minute)
    allowed_cidrs = _check_cidrs(allowed_cidrs)
    if await _name_taken(session, app_id, name):
        raise _duplicate(name)
    new = mint(
        pepper=pepper,
        app_id=app_id,
        name=name,
        role=role,
        permissions=stored,
        created_by=actor.label,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        allowed_cidrs=allowed_cidrs,
    )
    session.add(new.key)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _duplicate(name) from None
    record(
        session,
        actor=actor,
        action="api_key.create",
        target_type="api_key",
        target_id=new.key.id,
        app_id=app_id,
        details={
            "name": name,
            "role": role,
            "permissions": ordered(resolve_permissions(role, stored)),
            "expires_at": expires_at.isoformat() if expires_at else None,
            "rate_limit_per_minute": rate_limit_per_minute,
            "allowed_cidrs": allowed_cidrs,
        },
    )
    await session.commit()
    return new


@dataclass(frozen=True)
class KeyFilter:
    """Which of an app's live keys a list shows; the defaults show them all."""

    search: str | None = None  # part of the name, any case
    role: str | None = None
    expiring_soon: bool = False  # expiry within ``EXPIRING_SOON`` (or past)
    unused_days: int | None = None  # not used (nor made) in this many days


def _filtered(app_id: str, where: KeyFilter) -> Select[Any]:
    query = select(ApiKey).where(ApiKey.app_id == app_id, ApiKey.deleted_at.is_(None))
    now = utcnow()
    if where.search:
        query = query.where(func.lower(ApiKey.name).contains(where.search.lower(), autoescape=True))
    if where.role:
        query = query.where(ApiKey.role == where.role)
    if where.expiring_soon:
        query = query.where(ApiKey.expires_at <= now + EXPIRING_SOON)
    if where.unused_days is not None:
        # A key made yesterday and never used is not "unused for 30 days".
        since = now - timedelta(days=where.unused_days)
        query = query.where(
            ApiKey.created_at <= since,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= since),
        )
    return query


def _ordered(query: Select[Any], sort: str) -> Select[Any]:
    if sort not in SORTS:
        raise BadRequest(
            f"sort must be one of {', '.join(SORTS)}", code="invalid_query_params", field="sort"
        )
    descending, field = sort.startswith("-"), sort.lstrip("-")
    first: Any
    if field == "last_used":
        # Never used counts as the longest ago: last when newest first, first otherwise.
        used = ApiKey.last_used_at
        first = used.desc().nulls_last() if descending else used.asc().nulls_first()
    else:
        # Names sort alike on both databases whatever their collation.
        column = func.lower(ApiKey.name) if field == "name" else ApiKey.created_at
        first = column.desc() if descending else column.asc()
    # The id breaks ties, so pages never repeat or skip a key.
    return query.order_by(first, ApiKey.id)


async def list_keys(
    session: AsyncSession,
    *,
    app_id: str,
    limit: int = 50,
    offset: int = 0,
    where: KeyFilter | None = None,
    sort: str = DEFAULT_SORT,
) -> tuple[list[ApiKey], int]:
    """A page of the app's live keys matching ``where``, and how many match in all."""
    live = _filtered(app_id, where or KeyFilter())
    total = await session.scalar(select(func.count()).select_from(live.subquery())) or 0
    rows = await session.scalars(_ordered(live, sort).limit(limit).offset(offset))
    return list(rows), total


async def get_key(session: AsyncSession, *, app_id: str, key_id: str) -> ApiKey:
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id, ApiKey.app_id == app_id, ApiKey.deleted_at.is_(None)
        )
    )
    if key is None:
        raise NotFound("API key not found", code="api_key_not_found")
    return key


async def live_key(session: AsyncSession, key_id: str, app_id: str | None = None) -> ApiKey:
    """A live key by id, of ``app_id`` when one is named (404 otherwise)."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.deleted_at.is_(None))
    )
    if key is None or (app_id and key.app_id != app_id):
        raise NotFound("API key not found", code="api_key_not_found")
    return key


async def find_key(session: AsyncSession, *, app_id: str, id_or_name: str) -> ApiKey:
    """By id or by name within the app (for the CLI)."""
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.app_id == app_id,
            ApiKey.deleted_at.is_(None),
            (ApiKey.id == id_or_name) | (ApiKey.name == id_or_name),
        )
    )
    if key is None:
        raise NotFound(f"No API key '{id_or_name}' in this app", code="api_key_not_found")
    return key


_UNSET = object()


async def edit_key(
    session: AsyncSession,
    *,
    actor: Actor,
    key: ApiKey,
    name: str | None = None,
    role: str | None = None,
    permissions: list[str] | None = None,
    expires_at: datetime | object | None = _UNSET,
    rate_limit_per_minute: int | object | None = _UNSET,
    allowed_cidrs: list[str] | object | None = _UNSET,
) -> ApiKey:
    """Name, role, permissions, expiry, rate limit and IP allowlist change; the value
    never does. For the last three, ``None`` clears and leaving them out keeps."""
    before = to_public(key)
    if name is not None:
        name = check_plain(name.strip(), "name")
        if not name:
            raise BadRequest("Name is required")
        if name != key.name and await _name_taken(session, key.app_id, name, except_id=key.id):
            raise _duplicate(name)
        key.name = name
    if role is not None or permissions is not None:
        new_role, stored = resolve_role(role, permissions)
        _check_grantable(actor, new_role, stored)
        key.role, key.permissions = new_role, stored
    if expires_at is not _UNSET:
        assert expires_at is None or isinstance(expires_at, datetime)
        expires_at = _check_expiry(expires_at)
        _check_retirement(key, expires_at)
        policy.check_expiry(await policy.load(session, key.app_id), expires_at)
        key.expires_at = expires_at
    if rate_limit_per_minute is not _UNSET:
        assert rate_limit_per_minute is None or isinstance(rate_limit_per_minute, int)
        key.rate_limit_per_minute = _check_rate_limit(rate_limit_per_minute)
    if allowed_cidrs is not _UNSET:
        assert allowed_cidrs is None or isinstance(allowed_cidrs, list)
        key.allowed_cidrs = _check_cidrs(allowed_cidrs)
    key.updated_at = utcnow()
    after = to_public(key)
    changes = {
        field: {
            "before": _jsonable(getattr(before, field)),
            "after": _jsonable(getattr(after, field)),
        }
        for field in (
            "name",
            "role",
            "permissions",
            "expires_at",
            "rate_limit_per_minute",
            "allowed_cidrs",
        )
        if getattr(before, field) != getattr(after, field)
    }
    cidrs_before, cidrs_after = set(before.allowed_cidrs or ()), set(after.allowed_cidrs or ())
    record(
        session,
        actor=actor,
        action="api_key.update",
        target_type="api_key",
        target_id=key.id,
        app_id=key.app_id,
        details={
            "name": key.name,
            "changes": changes,
            "permissions_added": sorted(set(after.permissions) - set(before.permissions)),
            "permissions_removed": sorted(set(before.permissions) - set(after.permissions)),
            "allowed_cidrs_added": sorted(cidrs_after - cidrs_before),
            "allowed_cidrs_removed": sorted(cidrs_before - cidrs_after),
        },
    )
    session.add(KeyChange(key_id=key.id, app_id=None))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _duplicate(name or key.name) from None
    return key


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


async def delete_key(session: AsyncSession, *, actor: Actor, key: ApiKey) -> None:
    key.deleted_at = utcnow()
    record(
        session,
        actor=actor,
        action="api_key.delete",
        target_type="api_key",
        target_id=key.id,
        app_id=key.app_id,
        details={"name": key.name, "key_prefix": key.display_prefix},
    )
    session.add(KeyChange(key_id=key.id))
    await session.commit()


async def roll_key(
    session: AsyncSession, *, actor: Actor, pepper: bytes, key: ApiKey, grace_seconds: int = 0
) -> tuple[NewKey, datetime]:
    """A new value with the same app, role, permissions and expiry; the old one lives
    on for ``grace_seconds`` (0: deleted now). Returns the new key and the old one's end."""
    if key.rolled_to is not None:
        raise BadRequest(
            "This key was already rolled and is being retired: roll the key that replaced it",
            code="api_key_retiring",
        )
    _check_grantable(actor, key.role, key.permissions)
    now = utcnow()
    name, original_expiry = key.name, key.expires_at
    # The new key takes the name; the old one is renamed until it ends.
    key.name = f"{name} (rolled {now:%Y-%m-%d %H:%M:%S})"[:255]
    if grace_seconds <= 0:
        key.deleted_at = now
        old_ends = now
    else:
        old_ends = now + timedelta(seconds=grace_seconds)
        if original_expiry is not None and original_expiry < old_ends:
            old_ends = original_expiry
        key.expires_at = old_ends
    key.updated_at = now
    await session.flush()
    new = mint(
        pepper=pepper,
        app_id=key.app_id,
        name=name,
        role=key.role,
        permissions=list(key.permissions),
        created_by=actor.label,
        expires_at=original_expiry,
        rate_limit_per_minute=key.rate_limit_per_minute,
        allowed_cidrs=list(key.allowed_cidrs) if key.allowed_cidrs else None,
    )
    session.add(new.key)
    await session.flush()
    key.rolled_to = new.key.id
    record(
        session,
        actor=actor,
        action="api_key.roll",
        target_type="api_key",
        target_id=key.id,
        app_id=key.app_id,
        details={
            "name": name,
            "new_key_id": new.key.id,
            "grace_seconds": grace_seconds,
            "previous_key_expires_at": old_ends.isoformat(),
        },
    )
    session.add(KeyChange(key_id=key.id))
    await session.commit()
    return new, old_ends
