from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from agentmark_gateway.api_keys import policy as key_policy
from agentmark_gateway.api_route import ApiRoute
from agentmark_gateway.apps import service
from agentmark_gateway.apps.schemas import AppCreate, AppPublic, AppUpdate
from agentmark_gateway.auth.deps import SignedIn, allowed
from agentmark_gateway.deps import DbSession
from agentmark_gateway.pagination import PageDep, paginated
from agentmark_gateway.permissions.org_roles import Action

router = APIRouter(prefix="/v1/apps", tags=["Apps"], route_class=ApiRoute)


@router.get("", summary="List apps")
async def list_apps(
    db: DbSession, page: PageDep, user: SignedIn = allowed(Action.APPS_READ)
) -> dict[str, Any]:
    apps, total = await service.list_apps(db, limit=page.limit, offset=page.offset)
    return paginated(
        [AppPublic.model_validate(a).model_dump(mode="json") for a in apps], total, page
    )


DUPLICATE_NAME: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another app has this name"}
}
POLICY_FIELDS = {"key_max_lifetime_days", "key_expiry_required"}


@router.post("", status_code=201, summary="Create an app", responses=DUPLICATE_NAME)
async def create_app(
    body: AppCreate, db: DbSession, user: SignedIn = allowed(Action.APPS_MANAGE)
) -> dict[str, AppPublic]:
    app = await service.create_app(
        db, actor=user.actor, name=body.name, retention_days=body.retention_days
    )
    return {"data": AppPublic.model_validate(app)}


@router.get("/{app_id}", summary="Get an app")
async def get_app(
    app_id: str, db: DbSession, user: SignedIn = allowed(Action.APPS_READ)
) -> dict[str, AppPublic]:
    return {"data": AppPublic.model_validate(await service.get_app(db, app_id))}


@router.patch(
    "/{app_id}",
    summary="Rename an app, set its retention or its key policy",
    responses=DUPLICATE_NAME,
)
async def update_app(
    app_id: str, body: AppUpdate, db: DbSession, user: SignedIn = allowed(Action.APPS_MANAGE)
) -> dict[str, AppPublic]:
    app = await service.get_app(db, app_id)
    # The rename first: its 409 is the only refusal left, and it leaves nothing written.
    if body.name is not None:
        app = await service.rename_app(db, actor=user.actor, app=app, name=body.name)
    if "retention_days" in body.model_fields_set:
        app = await service.set_retention(
            db, actor=user.actor, app=app, retention_days=body.retention_days
        )
    sent = body.model_dump(include=POLICY_FIELDS, exclude_unset=True)
    if sent:
        # A field left out keeps its value; key_expiry_required: null means false.
        app = await key_policy.set_policy(
            db,
            actor=user.actor,
            app=app,
            max_lifetime_days=sent.get("key_max_lifetime_days", app.key_max_lifetime_days),
            expiry_required=bool(sent.get("key_expiry_required", app.key_expiry_required)),
        )
    return {"data": AppPublic.model_validate(app)}


@router.delete("/{app_id}", status_code=204, summary="Delete an app, its keys and its data")
async def delete_app(
    app_id: str, db: DbSession, user: SignedIn = allowed(Action.APPS_MANAGE)
) -> Response:
    app = await service.get_app(db, app_id)
    await service.delete_app(db, actor=user.actor, app=app)
    return Response(status_code=204)
