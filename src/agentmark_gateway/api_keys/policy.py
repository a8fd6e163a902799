"""An app's key hygiene policy: how long a key may live, and whether it must expire.

Both are optional and checked in one place, ``check_expiry``, whenever a key's
expiry is set: on create and on an edit that changes it (API, CLI and dashboard
all go through ``api_keys.service``). Keys made before a policy keep their expiry
until someone edits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.apps.models import App
from agentmark_gateway.audit.service import Actor, record
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import BadRequest

# Ten years, as the furthest expiry a key may have at all (service.MAX_EXPIRY).
MAX_LIFETIME_DAYS = 3650

MAX_LIFETIME_HELP = (
    "The longest a key of this app may live, in days from when its expiry is set "
    "(1 to 3650); a key must then have an expiry. null: no limit."
)
EXPIRY_REQUIRED_HELP = "Every key of this app must have an expiry."


@dataclass(frozen=True)
class KeyPolicy:
    max_lifetime_days: int | None = None
    expiry_required: bool = False

    @property
    def needs_expiry(self) -> bool:
        # A lifetime limit means nothing for a key that never expires.
        return self.expiry_required or self.max_lifetime_days is not None

    def allows(self, lifetime: timedelta | None) -> bool:
        """Whether a key living ``lifetime`` from now (None: for ever) fits."""
        if lifetime is None:
            return not self.needs_expiry
        return self.max_lifetime_days is None or lifetime <= timedelta(days=self.max_lifetime_days)


def of(app: App) -> KeyPolicy:
    return KeyPolicy(
        max_lifetime_days=app.key_max_lifetime_days,
        expiry_required=bool(app.key_expiry_required),
    )


async def load(session: AsyncSession, app_id: str) -> KeyPolicy:
    row = (
        await session.execute(
            select(App.key_max_lifetime_days, App.key_expiry_required).where(App.id == app_id)
        )
    ).one_or_none()
    if row is None:
        return KeyPolicy()
    return KeyPolicy(max_lifetime_days=row[0], expiry_required=bool(row[1]))


def check_expiry(policy: KeyPolicy, expires_at: datetime | None) -> None:
    """Refuse an expiry (already checked to be in the future, in UTC) the policy forbids."""
    if expires_at is None:
        if policy.max_lifetime_days is not None:
            raise BadRequest(
                "expires_at is required: this app's keys live at most "
                f"{policy.max_lifetime_days} days",
                code="invalid_expiry",
                field="expires_at",
            )
        if policy.expiry_required:
            raise BadRequest(
                "expires_at is required: this app's keys must have an expiry",
                code="invalid_expiry",
                field="expires_at",
            )
        return
    if policy.max_lifetime_days is not None and expires_at - utcnow() > timedelta(
        days=policy.max_lifetime_days
    ):
        raise BadRequest(
            f"expires_at must be at most {policy.max_lifetime_days} days ahead: "
            "this app's key policy",
            code="invalid_expiry",
            field="expires_at",
        )


def _check_days(days: int | None) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_LIFETIME_DAYS:
        raise BadRequest(
            f"key_max_lifetime_days must be from 1 to {MAX_LIFETIME_DAYS}, or null for no limit",
            code="invalid_key_policy",
            field="key_max_lifetime_days",
        )
    return days


async def set_policy(
    session: AsyncSession,
    *,
    actor: Actor,
    app: App,
    max_lifetime_days: int | None,
    expiry_required: bool,
) -> App:
    """Set the app's key policy (audited); it applies to the next key created or edited."""
    max_lifetime_days = _check_days(max_lifetime_days)
    before = {
        "key_max_lifetime_days": app.key_max_lifetime_days,
        "key_expiry_required": bool(app.key_expiry_required),
    }
    after = {"key_max_lifetime_days": max_lifetime_days, "key_expiry_required": expiry_required}
    app.key_max_lifetime_days = max_lifetime_days
    app.key_expiry_required = expiry_required
    if before != after:
        record(
            session,
            actor=actor,
            action="app.key_policy",
            target_type="app",
            target_id=app.id,
            app_id=app.id,
            details={"name": app.name, "before": before, "after": after},
        )
    await session.commit()
    return app
