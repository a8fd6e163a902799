from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict

from agentmark_gateway import moments
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.audit import service
from agentmark_gateway.auth.deps import SignedIn, allowed
from agentmark_gateway.deps import DbSession
from agentmark_gateway.moments import DayOrMoment
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.org_roles import Action

router = APIRouter(prefix="/v1/audit-log", tags=["Audit log"], route_class=ApiRoute)


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    app_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    created_at: datetime


@router.get("", summary="Key and app events, newest first")
async def list_events(
    db: DbSession,
    page: PageDep,
    x_app_id: Annotated[str | None, Header(alias="X-Agentmark-App-Id")] = None,
    app_id: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        DayOrMoment | None, Query(description="Events at or after this date or date-time")
    ] = None,
    user: SignedIn = allowed(Action.AUDIT_READ),
) -> dict[str, Any]:
    events, total = await service.list_events(
        db,
        app_id=app_id or x_app_id,
        action=action,
        since=None if since is None else moments.earliest(since),
        limit=page.limit,
        offset=page.offset,
    )
    return paginated(
        [AuditEventPublic.model_validate(e).model_dump(mode="json") for e in events], total, page
    )
