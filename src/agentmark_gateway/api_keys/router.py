from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from agentmark_gateway.api_keys import service
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRoll,
    ApiKeyRolled,
    ApiKeyUpdate,
)
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.apps.service import get_app
from agentmark_gateway.auth.deps import SignedIn, allowed
from agentmark_gateway.deps import DbSession, GatewayDep
from agentmark_gateway.errors import BadRequest
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.usage.service import write_pending

router = APIRouter(prefix="/v1/api-keys", tags=["API keys"], route_class=ApiRoute)

NO_STORE = {"Cache-Control": "no-store"}
DUPLICATE_NAME: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another live key of this app has this name"}
}
AppHeader = Annotated[
    str | None, Header(alias="X-Agentmark-App-Id", description="The app whose keys these are.")
]


def _app_id(header: str | None, *fallbacks: str | None) -> str:
    for candidate in (header, *fallbacks):
        if candidate:
            return candidate
    raise BadRequest("Name the app in X-Agentmark-App-Id (or app_id)", code="missing_app_id")


async def _load_key(db: DbSession, key_id: str, app_header: str | None) -> ApiKey:
    """Check existence once: the key, live, in the named app (when one is named)."""
    return await service.live_key(db, key_id, app_header)


def _created(new: service.NewKey) -> ApiKeyCreated:
    return ApiKeyCreated(**service.to_public(new.key).model_dump(), plaintext_key=new.plaintext)


SortField = Literal["name", "-name", "created", "-created", "last_used", "-last_used"]
RoleFilter = Literal["sdk", "read-only", "full-access", "custom"]


@router.get("", summary="List an app's API keys (never their values)")
async def list_keys(
    db: DbSession,
    gateway: GatewayDep,
    page: PageDep,
    x_app_id: AppHeader = None,
    app_id: Annotated[str | None, Query(description="Alternative to the header")] = None,
    search: Annotated[
        str | None, Query(max_length=255, description="Keys whose name contains this, any case")
    ] = None,
    sort: Annotated[
        SortField,
        Query(
            description="name, created or last_used; a leading '-' sorts descending. "
            "Never-used keys count as used longest ago."
        ),
    ] = "-created",
    role: Annotated[RoleFilter | None, Query(description="Only keys of this role")] = None,
    expiring_soon: Annotated[
        bool, Query(description="Only keys expiring within 7 days (or already expired)")
    ] = False,
    unused_days: Annotated[
        int | None,
        Query(
            ge=1,
            le=3650,
            description="Only keys not used in this many days (and made before then)",
        ),
    ] = None,
    user: SignedIn = allowed(Action.KEYS_LIST),
) -> dict[str, Any]:
    app = await get_app(db, _app_id(x_app_id, app_id))
    await write_pending(gateway)  # last used, live
    where = service.KeyFilter(
        search=search, role=role, expiring_soon=expiring_soon, unused_days=unused_days
    )
    keys, total = await service.list_keys(
        db, app_id=app.id, limit=page.limit, offset=page.offset, where=where, sort=sort
    )
    return paginated([service.to_public(k).model_dump(mode="json") for k in keys], total, page)


@router.post(
    "",
    status_code=201,
    summary="Create an API key (the value is shown once)",
    responses=DUPLICATE_NAME,
)
async def create_key(
    body: ApiKeyCreate,
    request: Request,
    response: Response,
    db: DbSession,
    x_app_id: AppHeader = None,
    user: SignedIn = allowed(Action.KEYS_MANAGE),
) -> dict[str, ApiKeyCreated]:
    app = await get_app(db, _app_id(x_app_id, body.app_id))
    new = await service.create_key(
        db,
        actor=user.actor,
        pepper=request.app.state.gateway.pepper,
        app_id=app.id,
        name=body.name,
        role=body.role,
        permissions=body.permissions,
        expires_at=body.expires_at,
        rate_limit_per_minute=body.rate_limit_per_minute,
        allowed_cidrs=body.allowed_cidrs,
    )
    response.headers.update(NO_STORE)
    return {"data": _created(new)}


@router.get("/{key_id}", summary="Show an API key (never its value)")
async def show_key(
    key_id: str,
    db: DbSession,
    gateway: GatewayDep,
    x_app_id: AppHeader = None,
    user: SignedIn = allowed(Action.KEYS_LIST),
) -> dict[str, ApiKeyPublic]:
    await write_pending(gateway)  # last used, live
    return {"data": service.to_public(await _load_key(db, key_id, x_app_id))}


@router.patch(
    "/{key_id}",
    summary="Edit name, role, permissions, expiry, rate limit or IP allowlist; the value stays",
    responses=DUPLICATE_NAME,
)
async def edit_key(
    key_id: str,
    body: ApiKeyUpdate,
    db: DbSession,
    x_app_id: AppHeader = None,
    user: SignedIn = allowed(Action.KEYS_MANAGE),
) -> dict[str, ApiKeyPublic]:
    key = await _load_key(db, key_id, x_app_id)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    key = await service.edit_key(db, actor=user.actor, key=key, **changes)
    return {"data": service.to_public(key)}


@router.delete("/{key_id}", status_code=204, summary="Delete an API key, effective at once")
async def delete_key(
    key_id: str,
    db: DbSession,
    x_app_id: AppHeader = None,
    user: SignedIn = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await _load_key(db, key_id, x_app_id)
    await service.delete_key(db, actor=user.actor, key=key)
    return Response(status_code=204)


@router.post(
    "/{key_id}/roll",
    status_code=201,
    summary="Roll a key: new value, old one ends after a grace period",
    responses=DUPLICATE_NAME,
)
async def roll_key(
    key_id: str,
    request: Request,
    response: Response,
    db: DbSession,
    body: ApiKeyRoll | None = None,
    x_app_id: AppHeader = None,
    user: SignedIn = allowed(Action.KEYS_MANAGE),
) -> dict[str, ApiKeyRolled]:
    key = await _load_key(db, key_id, x_app_id)
    grace = body.grace_seconds if body else 0
    new, old_ends = await service.roll_key(
        db,
        actor=user.actor,
        pepper=request.app.state.gateway.pepper,
        key=key,
        grace_seconds=grace,
    )
    response.headers.update(NO_STORE)
    return {
        "data": ApiKeyRolled(
            **_created(new).model_dump(),
            previous_key_id=key_id,
            previous_key_expires_at=old_ends,
        )
    }
