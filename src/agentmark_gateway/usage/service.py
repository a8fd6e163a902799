"""Reading usage: series per key or app, and least-privilege advice per key.

Every read adds up the rows of every process (usage/models.py). Minute rows
cover the last 48 hours; older counts are hour rows, so a minute series
reaching further back shows those hours at their first minute.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.permissions.catalog import CUSTOM, ROLES, ordered, resolve_permissions
from agentmark_gateway.usage.models import KeyUsage
from agentmark_gateway.usage.totals import Totals

if TYPE_CHECKING:
    from agentmark_gateway.runtime import Gateway

Bucket = Literal["minute", "hour", "day"]
BUCKET_LENGTH: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
MAX_BUCKETS = 3_000
DEFAULT_WINDOW = timedelta(hours=24)
ADVICE_WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30)}


async def write_pending(gateway: Gateway) -> None:
    """This process's counts and last-used times, in the database before a read, so
    what an admin reads includes the request they just made."""
    with contextlib.suppress(Exception):  # a read still answers with what is there
        await gateway.usage.flush()
    with contextlib.suppress(Exception):
        await gateway.last_used.flush()


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    bucket: Bucket

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None, bucket: Bucket) -> Window:
        """The asked window (default: the last 24 hours), checked (400)."""
        end = end or utcnow()
        start = start or end - DEFAULT_WINDOW
        if start >= end:
            raise BadRequest("from must be before to", code="invalid_query_params")
        if (end - start) / BUCKET_LENGTH[bucket] > MAX_BUCKETS:
            raise BadRequest(
                f"At most {MAX_BUCKETS} {bucket} buckets: a larger bucket or a shorter range",
                code="invalid_query_params",
            )
        return cls(start, end, bucket)

    def bucket_of(self, moment: datetime) -> datetime:
        if self.bucket == "minute":
            return moment.replace(second=0, microsecond=0)
        if self.bucket == "hour":
            return moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)

    def buckets(self) -> list[datetime]:
        step = BUCKET_LENGTH[self.bucket]
        moment, last, found = self.bucket_of(self.start), self.end, []
        while moment < last:
            found.append(moment)
            moment += step
        return found


async def _rows(
    session: AsyncSession, *, app_id: str, key_id: str | None, start: datetime, end: datetime
) -> list[KeyUsage]:
    # An hour row starting before ``start`` may hold minutes inside it: take it whole.
    query = select(KeyUsage).where(
        KeyUsage.app_id == app_id,
        KeyUsage.bucket_start >= start - timedelta(hours=1),
        KeyUsage.bucket_start < end,
    )
    if key_id is not None:
        query = query.where(KeyUsage.key_id == key_id)
    rows = (await session.scalars(query)).all()
    return [row for row in rows if _overlaps(row, start)]


def _overlaps(row: KeyUsage, start: datetime) -> bool:
    length = timedelta(minutes=1) if row.granularity == "minute" else timedelta(hours=1)
    return row.bucket_start + length > start


def _series(rows: list[KeyUsage], window: Window) -> tuple[Totals, list[dict[str, Any]]]:
    totals = Totals()
    by_bucket: dict[datetime, Totals] = {}
    for row in rows:
        totals.add(row)
        by_bucket.setdefault(window.bucket_of(max(row.bucket_start, window.start)), Totals()).add(
            row
        )
    series = [
        {"start": moment.isoformat(), **by_bucket.get(moment, Totals()).as_json()}
        for moment in window.buckets()
    ]
    return totals, series


def _last_seen(totals: Totals) -> dict[str, Any]:
    return {
        "last_client_address": totals.last_client_address,
        "last_user_agent": totals.last_user_agent,
        "last_seen_at": None if totals.last_seen_at is None else totals.last_seen_at.isoformat(),
    }


async def key_usage(session: AsyncSession, key: ApiKey, window: Window) -> dict[str, Any]:
    rows = await _rows(
        session, app_id=key.app_id, key_id=key.id, start=window.start, end=window.end
    )
    totals, series = _series(rows, window)
    return {
        "key_id": key.id,
        "app_id": key.app_id,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "bucket": window.bucket,
        "totals": totals.as_json(),
        **_last_seen(totals),
        "series": series,
    }


async def app_usage(session: AsyncSession, app_id: str, window: Window) -> dict[str, Any]:
    rows = await _rows(session, app_id=app_id, key_id=None, start=window.start, end=window.end)
    totals, series = _series(rows, window)
    per_key: dict[str, Totals] = {}
    for row in rows:
        per_key.setdefault(row.key_id, Totals()).add(row)
    names = dict(
        (
            await session.execute(
                select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(list(per_key)))
            )
        ).all()
    )
    keys = [
        {"key_id": key_id, "name": names.get(key_id), **t.as_json(), **_last_seen(t)}
        for key_id, t in sorted(per_key.items(), key=lambda item: -item[1].requests)
    ]
    return {
        "app_id": app_id,
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "bucket": window.bucket,
        "totals": totals.as_json(),
        "keys": keys,
        "series": series,
    }


# -- advice -------------------------------------------------------------------------


def narrowest(used: frozenset[str]) -> tuple[str, list[str]]:
    """The preset that holds exactly ``used``, else the custom set of ``used``."""
    for name in ROLES:
        if name != CUSTOM and resolve_permissions(name, []) == used:
            return name, []
    return CUSTOM, ordered(used)


async def advice(
    session: AsyncSession, key: ApiKey, *, preview: frozenset[str] | None = None
) -> dict[str, Any]:
    """What ``key`` used and was refused over 7 and 30 days, and the narrowest set that
    would have allowed every request it was admitted for in 30 days. ``preview``: how
    many of the last 7 days' admitted requests that set would have refused."""
    now = utcnow()
    granted = resolve_permissions(key.role, key.permissions)
    windows: dict[str, Totals] = {}
    for name, length in ADVICE_WINDOWS.items():
        totals = Totals()
        for row in await _rows(
            session, app_id=key.app_id, key_id=key.id, start=now - length, end=now
        ):
            totals.add(row)
        windows[name] = totals
    month, week = windows["30d"], windows["7d"]
    used = frozenset(month.permissions_used()) & granted
    answer: dict[str, Any] = {
        "key_id": key.id,
        "role": key.role,
        "granted": ordered(granted),
        "windows": {
            name: {
                "requests": t.requests,
                "admitted": sum(t.permission_sets.values()),
                "used": ordered(t.permissions_used()),
                "unused": ordered(granted - frozenset(t.permissions_used())),
            }
            for name, t in windows.items()
        },
        "refused": dict(sorted(month.refused.items())),
        "advice": _advice(granted, used, week),
    }
    if preview is not None:
        answer["preview"] = {
            "permissions": ordered(preview),
            "requests_7d": sum(week.permission_sets.values()),
            "refused_7d": week.refused_by(preview),
        }
    return answer


def _advice(granted: frozenset[str], used: frozenset[str], week: Totals) -> dict[str, Any]:
    if not used:
        return {
            "role": None,
            "permissions": [],
            "narrower": False,
            "summary": f"This key holds {len(granted)} permissions and used none in 30 days; "
            "if nothing needs it, delete it.",
        }
    role, permissions = narrowest(used)
    narrower = used < granted
    shape = f"the {ROLES[role].label} preset" if role != CUSTOM else ", ".join(permissions)
    summary = (
        f"This key holds {len(granted)} permissions and used {len(used)} in 30 days; "
        f"shrink it to {shape}."
        if narrower
        else f"This key used every permission it holds ({len(granted)}) in 30 days."
    )
    return {
        "role": role,
        "permissions": permissions if role == CUSTOM else ordered(used),
        "narrower": narrower,
        "refused_7d": week.refused_by(used),
        "summary": summary,
    }
