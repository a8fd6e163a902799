"""Settings > API Keys: list, create, edit, delete and roll, through api_keys.service.

The key value is rendered in exactly one template (``keys/secret.html``), from
the create or roll response, which is never cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, Response

from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError, BadRequest, Conflict, Forbidden, InvalidPermissions
from agentmark_gateway.permissions.catalog import CUSTOM, ordered, resolve_permissions
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.web.context import AppRef, CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

router = APIRouter(prefix="/apps/{app_id}/settings/api-keys", route_class=WebRoute)

RECENT_USE = timedelta(days=7)
KEEP = "keep"
EXPIRY_CHOICES: tuple[tuple[str, str, timedelta | None], ...] = (
    ("never", "Never", None),
    ("1d", "In 1 day", timedelta(days=1)),
    ("7d", "In 7 days", timedelta(days=7)),
    ("30d", "In 30 days", timedelta(days=30)),
    ("90d", "In 90 days", timedelta(days=90)),
    ("365d", "In 1 year", timedelta(days=365)),
)
GRACE_CHOICES: tuple[tuple[int, str], ...] = (
    (0, "Now"),
    (3600, "In 1 hour"),
    (86400, "In 24 hours"),
    (7 * 86400, "In 7 days"),
)
DEFAULT_GRACE = 86400

Name = Annotated[str, Form(max_length=255)]
RoleField = Annotated[str | None, Form(max_length=32)]
PermissionsField = Annotated[list[str] | None, Form()]
ExpiresIn = Annotated[str, Form(max_length=16)]
KeyId = Annotated[str, Path(max_length=64)]


@dataclass
class KeyForm:
    """What the create/edit modal shows, including the errors of the last try."""

    name: str = ""
    role: str | None = None
    permissions: list[str] = field(default_factory=list)
    expires_in: str = "never"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, key: ApiKey) -> KeyForm:
        # Custom boxes start from what the key holds, so switching to Custom edits that set.
        held = ordered(resolve_permissions(key.role, key.permissions))
        return cls(name=key.name, role=key.role, permissions=held, expires_in=KEEP)


def _expiry(choice: str) -> datetime | None:
    for value, _label, delta in EXPIRY_CHOICES:
        if value == choice:
            return None if delta is None else utcnow() + delta
    raise BadRequest("Choose when the key expires", code="invalid_expiry")


def _field_of(error: ApiError) -> str:
    """Which form field a service error belongs under."""
    if isinstance(error, InvalidPermissions | Forbidden):
        return "role"
    if error.code == "invalid_expiry":
        return "expires_in"
    return "name"


def _keys_url(app: AppRef) -> str:
    return f"/apps/{app.id}/settings/api-keys"


async def _list_context(db: DbSession, app: AppRef) -> dict[str, Any]:
    found, total = await keys.list_keys(db, app_id=app.id, limit=1000)
    return {"keys": [keys.to_public(k) for k in found], "total": total}


async def _form_page(
    request: Request,
    db: DbSession,
    viewer: Viewer,
    app: AppRef,
    form: KeyForm,
    *,
    key: ApiKey | None = None,
    status_code: int = 200,
) -> Response:
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        form=form,
        key=keys.to_public(key) if key else None,
        expiry_choices=EXPIRY_CHOICES,
        custom=CUSTOM,
    )
    return render(request, "keys/form.html", context, status_code=status_code)


def _changed(request: Request, app: AppRef) -> Response:
    """After an edit or a delete: close the dialog and refresh the list (or go back to it)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Trigger": "keys-changed, close-modal"})
    return redirect(request, _keys_url(app))


@router.get("")
async def list_page(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.KEYS_LIST)
) -> Response:
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(await _list_context(db, app))
    return render(request, "keys/index.html", context)


@router.get("/rows")
async def list_rows(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.KEYS_LIST)
) -> Response:
    context = {"viewer": viewer, "app": app, **await _list_context(db, app)}
    return render(request, "keys/_list.html", context)


@router.get("/new")
async def new_key_form(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.KEYS_MANAGE)
) -> Response:
    return await _form_page(request, db, viewer, app, KeyForm())


@router.post("")
async def create_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    name: Name = "",
    role: RoleField = None,
    permissions: PermissionsField = None,
    expires_in: ExpiresIn = "never",
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    form = KeyForm(
        name=name, role=role or None, permissions=permissions or [], expires_in=expires_in
    )
    try:
        expires_at = _expiry(expires_in)
        new = await keys.create_key(
            db,
            actor=viewer.actor,
            pepper=request.app.state.gateway.pepper,
            app_id=app.id,
            name=name,
            role=form.role,
            permissions=form.permissions,
            expires_at=expires_at,
        )
    except (BadRequest, Conflict, Forbidden, InvalidPermissions) as error:
        form.errors[_field_of(error)] = error.message
        return await _form_page(request, db, viewer, app, form, status_code=error.status_code)
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        key=keys.to_public(new.key), plaintext=new.plaintext, rolled=False, rolled_until=None
    )
    return render(request, "keys/secret.html", context, headers={"HX-Trigger": "keys-changed"})


@router.get("/{key_id}/edit")
async def edit_key_form(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    return await _form_page(request, db, viewer, app, KeyForm.of(key), key=key)


@router.post("/{key_id}")
async def save_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    name: Name = "",
    role: RoleField = None,
    permissions: PermissionsField = None,
    expires_in: ExpiresIn = KEEP,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    form = KeyForm(
        name=name, role=role or None, permissions=permissions or [], expires_in=expires_in
    )
    changes: dict[str, Any] = {"name": name, "role": form.role, "permissions": form.permissions}
    try:
        if expires_in != KEEP:
            changes["expires_at"] = _expiry(expires_in)
        if form.role is None:
            # The service reads "no role, no permissions" as "leave as is"; the form means none.
            raise InvalidPermissions()
        await keys.edit_key(db, actor=viewer.actor, key=key, **changes)
    except (BadRequest, Conflict, Forbidden, InvalidPermissions) as error:
        await db.rollback()
        key = await keys.get_key(db, app_id=app.id, key_id=key_id)
        form.errors[_field_of(error)] = error.message
        return await _form_page(
            request, db, viewer, app, form, key=key, status_code=error.status_code
        )
    return _changed(request, app)


@router.get("/{key_id}/delete")
async def delete_key_form(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    recently_used = key.last_used_at is not None and utcnow() - key.last_used_at <= RECENT_USE
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(key=keys.to_public(key), recently_used=recently_used)
    return render(request, "keys/delete.html", context)


@router.post("/{key_id}/delete")
async def delete_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    await keys.delete_key(db, actor=viewer.actor, key=key)
    return _changed(request, app)


@router.get("/{key_id}/roll")
async def roll_key_form(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(key=keys.to_public(key), grace_choices=GRACE_CHOICES, grace=DEFAULT_GRACE)
    return render(request, "keys/roll.html", context)


@router.post("/{key_id}/roll")
async def roll_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    grace_seconds: Annotated[int, Form()] = DEFAULT_GRACE,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    if grace_seconds not in {seconds for seconds, _label in GRACE_CHOICES}:
        raise BadRequest("Choose when the old key stops working", code="invalid_grace")
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    new, old_ends = await keys.roll_key(
        db,
        actor=viewer.actor,
        pepper=request.app.state.gateway.pepper,
        key=key,
        grace_seconds=grace_seconds,
    )
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        key=keys.to_public(new.key),
        plaintext=new.plaintext,
        rolled_until=old_ends if grace_seconds else None,
        rolled=True,
    )
    return render(request, "keys/secret.html", context, headers={"HX-Trigger": "keys-changed"})
