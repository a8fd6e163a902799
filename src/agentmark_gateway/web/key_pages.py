"""Settings > API Keys: list, create, edit, delete and roll, through api_keys.service,
and the app's key policy.

The key value is rendered in exactly one template (``keys/secret.html``), from
the create or roll response, which is never cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Form, Path, Query, Request, Response

from agentmark_gateway.api_keys import policy as key_policy
from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.schemas import MAX_RATE_LIMIT_PER_MINUTE
from agentmark_gateway.apps import service as apps
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import ApiError, BadRequest, Conflict, Forbidden, InvalidPermissions
from agentmark_gateway.netaccess import MAX_CIDRS, normalize_cidrs
from agentmark_gateway.permissions.catalog import CUSTOM, ROLES, ordered, resolve_permissions
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.usage.service import write_pending
from agentmark_gateway.web.context import AppRef, CurrentApp, page_context
from agentmark_gateway.web.route import WebRoute, redirect
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import is_htmx, render

router = APIRouter(prefix="/apps/{app_id}/settings/api-keys", route_class=WebRoute)

RECENT_USE = timedelta(days=7)
KEEP = "keep"
ON_DATE = "date"  # the expiry choice that reads the date field
EXPIRY_CHOICES: tuple[tuple[str, str, timedelta | None], ...] = (
    ("never", "Never", None),
    ("1d", "In 1 day", timedelta(days=1)),
    ("7d", "In 7 days", timedelta(days=7)),
    ("30d", "In 30 days", timedelta(days=30)),
    ("90d", "In 90 days", timedelta(days=90)),
    ("365d", "In 1 year", timedelta(days=365)),
)
PAGE_SIZE = 50
UNUSED_DAYS = 30  # what the list's "Unused" filter means
SORT_CHOICES: tuple[tuple[str, str], ...] = (
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("-last_used", "Recently used"),
    ("last_used", "Least recently used"),
)
SHOW_CHOICES: tuple[tuple[str, str], ...] = (
    ("all", "All keys"),
    ("expiring", "Expiring within 7 days"),
    ("unused", f"Unused for {UNUSED_DAYS} days"),
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
ExpiresOn = Annotated[str, Form(max_length=32)]
RateLimitField = Annotated[str, Form(max_length=32)]
CidrsField = Annotated[str, Form(max_length=8192)]
KeyId = Annotated[str, Path(max_length=64)]
# The list's search, filters, sort and page: lenient, since they come from links.
SearchParam = Annotated[str, Query(max_length=255)]
ChoiceParam = Annotated[str, Query(max_length=32)]
PageParam = Annotated[int, Query(ge=1, le=1_000_000)]


@dataclass
class KeyForm:
    """What the create/edit modal shows, including the errors of the last try."""

    name: str = ""
    role: str | None = None
    permissions: list[str] = field(default_factory=list)
    expires_in: str = "never"
    expires_on: str = ""
    rate_limit: str = ""
    allowed_cidrs: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, key: ApiKey) -> KeyForm:
        # Custom boxes start from what the key holds, so switching to Custom edits that set.
        held = ordered(resolve_permissions(key.role, key.permissions))
        return cls(
            name=key.name,
            role=key.role,
            permissions=held,
            expires_in=KEEP,
            rate_limit=str(key.rate_limit_per_minute or ""),
            allowed_cidrs="\n".join(key.allowed_cidrs or ()),
        )

    def rate_limit_value(self) -> int | None:
        """The limit typed, or None (empty: the gateway default); notes an error."""
        text = self.rate_limit.strip().replace(",", "").replace("_", "")
        if not text:
            return None
        if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_RATE_LIMIT_PER_MINUTE:
            return int(text)
        self.errors["rate_limit"] = (
            f"Give a whole number from 1 to {MAX_RATE_LIMIT_PER_MINUTE:,}, "
            "or leave it empty for the gateway default"
        )
        return None

    def cidrs_value(self) -> list[str] | None:
        """The allowlist typed, one entry a line (or comma-separated); notes an error."""
        entries = [e.strip() for e in self.allowed_cidrs.replace(",", "\n").splitlines()]
        entries = [e for e in entries if e]
        if not entries:
            return None
        if len(entries) > MAX_CIDRS:
            self.errors["allowed_cidrs"] = f"At most {MAX_CIDRS} entries"
            return None
        try:
            return normalize_cidrs(entries)
        except ValueError as exc:
            self.errors["allowed_cidrs"] = str(exc)
            return None

    def expiry_value(self) -> datetime | None:
        """The expiry chosen (not for ``keep``); notes an error."""
        if self.expires_in == ON_DATE:
            try:
                day = date.fromisoformat(self.expires_on.strip())
            except ValueError:
                self.errors["expires_in"] = "Pick the day the key expires"
                return None
            # The start of that day in UTC, as the field's hint says.
            return datetime.combine(day, time(0, 0), tzinfo=UTC)
        for value, _label, delta in EXPIRY_CHOICES:
            if value == self.expires_in:
                return None if delta is None else utcnow() + delta
        self.errors["expires_in"] = "Choose when the key expires"
        return None


def _field_of(error: ApiError) -> str:
    """Which form field a service error belongs under."""
    if isinstance(error, InvalidPermissions | Forbidden):
        return "role"
    return {
        "invalid_expiry": "expires_in",
        "invalid_rate_limit": "rate_limit",
        "invalid_allowed_cidrs": "allowed_cidrs",
    }.get(error.code, "name")


class FormInvalid(Exception):
    """The form's own checks failed; its ``errors`` say where."""


def _keys_url(app: AppRef) -> str:
    return f"/apps/{app.id}/settings/api-keys"


@dataclass(frozen=True)
class ListView:
    """The list's search, filter, sort and page, as the URL carries them."""

    q: str = ""
    role: str = ""
    show: str = "all"
    sort: str = keys.DEFAULT_SORT
    page: int = 1

    @classmethod
    def read(cls, q: str, role: str, show: str, sort: str, page: int) -> ListView:
        # Unknown values (an old link, a typo) fall back to "all" rather than failing.
        return cls(
            q=q.strip(),
            role=role if role in ROLES else "",
            show=show if show in dict(SHOW_CHOICES) else "all",
            sort=sort if sort in keys.SORTS else keys.DEFAULT_SORT,
            page=page,
        )

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.role or self.show != "all")

    def where(self) -> keys.KeyFilter:
        return keys.KeyFilter(
            search=self.q or None,
            role=self.role or None,
            expiring_soon=self.show == "expiring",
            unused_days=UNUSED_DAYS if self.show == "unused" else None,
        )

    def query(self, **changes: Any) -> str:
        """The query string of this view with ``changes``, defaults left out."""
        values = {
            "q": self.q,
            "role": self.role,
            "show": self.show,
            "sort": self.sort,
            "page": self.page,
            **changes,
        }
        defaults = {"q": "", "role": "", "show": "all", "sort": keys.DEFAULT_SORT, "page": 1}
        kept = {name: value for name, value in values.items() if value != defaults[name]}
        return urlencode(kept)


async def _list_context(db: DbSession, app: AppRef, view: ListView) -> dict[str, Any]:
    found, total = await keys.list_keys(
        db,
        app_id=app.id,
        limit=PAGE_SIZE,
        offset=(view.page - 1) * PAGE_SIZE,
        where=view.where(),
        sort=view.sort,
    )
    any_keys = total > 0 or (
        view.filtered and bool((await keys.list_keys(db, app_id=app.id, limit=1))[1])
    )
    return {
        "keys": [keys.to_public(k) for k in found],
        "total": total,
        "any_keys": any_keys,
        "view": view,
        "page_size": PAGE_SIZE,
        "first_row": (view.page - 1) * PAGE_SIZE + 1,
        "sort_choices": SORT_CHOICES,
        "show_choices": SHOW_CHOICES,
        "base_name": keys.base_name,
    }


async def _policy_context(db: DbSession, app: AppRef) -> dict[str, Any]:
    return {"policy": key_policy.of(await apps.get_app(db, app.id))}


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
    policy = (await _policy_context(db, app))["policy"]
    context.update(
        form=form,
        key=keys.to_public(key) if key else None,
        # Only the choices the app's key policy allows (the service checks again).
        expiry_choices=[c for c in EXPIRY_CHOICES if policy.allows(c[2])],
        on_date=ON_DATE,
        policy=policy,
        max_rate_limit=MAX_RATE_LIMIT_PER_MINUTE,
        custom=CUSTOM,
    )
    return render(request, "keys/form.html", context, status_code=status_code)


def _first_allowed_expiry(policy: key_policy.KeyPolicy) -> str:
    """A new key's expiry choice: never, unless the policy wants one (then the longest allowed)."""
    allowed = [value for value, _label, delta in EXPIRY_CHOICES if policy.allows(delta)]
    if "never" in allowed:
        return "never"
    return allowed[-1] if allowed else ON_DATE


def _changed(request: Request, app: AppRef) -> Response:
    """After an edit or a delete: close the dialog and refresh the list (or go back to it)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Trigger": "keys-changed, close-modal"})
    return redirect(request, _keys_url(app))


@router.get("")
async def list_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    q: SearchParam = "",
    role: ChoiceParam = "",
    show: ChoiceParam = "all",
    sort: ChoiceParam = keys.DEFAULT_SORT,
    page: PageParam = 1,
    viewer: Viewer = allowed(Action.KEYS_LIST),
) -> Response:
    view = ListView.read(q, role, show, sort, page)
    await write_pending(request.app.state.gateway)  # last used, live
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(await _list_context(db, app, view))
    context.update(await _policy_context(db, app))
    context.update(policy_saved=request.query_params.get("policy") == "saved")
    return render(request, "keys/index.html", context)


@router.get("/rows")
async def list_rows(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    q: SearchParam = "",
    role: ChoiceParam = "",
    show: ChoiceParam = "all",
    sort: ChoiceParam = keys.DEFAULT_SORT,
    page: PageParam = 1,
    part: ChoiceParam = "",
    viewer: Viewer = allowed(Action.KEYS_LIST),
) -> Response:
    """The list again (after a change), or only its results (search, filter, sort, page);
    the address bar follows, so a reload or a shared link shows the same view."""
    await write_pending(request.app.state.gateway)  # last used, live
    if part != "results":
        # A refresh after a change keeps the view the address bar shows.
        shown = parse_qs(urlsplit(request.headers.get("hx-current-url", "")).query)
        q, role, show, sort = (
            shown.get(n, [d])[0]
            for n, d in (("q", q), ("role", role), ("show", show), ("sort", sort))
        )
    view = ListView.read(q[:255], role[:32], show[:32], sort[:32], page)
    context = {"viewer": viewer, "app": app, **await _list_context(db, app, view)}
    query = view.query()
    headers = {"HX-Replace-Url": _keys_url(app) + (f"?{query}" if query else "")}
    template = "keys/_results.html" if part == "results" else "keys/_list.html"
    return render(request, template, context, headers=headers)


@router.post("/policy")
async def save_policy(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    max_lifetime_days: Annotated[str, Form(max_length=16)] = "",
    expiry_required: Annotated[str, Form(max_length=8)] = "",
    viewer: Viewer = allowed(Action.APPS_MANAGE),
) -> Response:
    """The app's key policy: a maximum lifetime and whether keys must expire."""
    text = max_lifetime_days.strip()
    record = await apps.get_app(db, app.id)
    try:
        if text and not (text.isascii() and text.isdigit()):
            raise BadRequest(
                f"Give a whole number of days from 1 to {key_policy.MAX_LIFETIME_DAYS}, "
                "or leave it empty for no limit"
            )
        await key_policy.set_policy(
            db,
            actor=viewer.actor,
            app=record,
            max_lifetime_days=int(text) if text else None,
            expiry_required=bool(expiry_required),
        )
    except BadRequest as error:
        context = await page_context(request, db, viewer, app, "api-keys")
        context.update(await _list_context(db, app, ListView()))
        context.update(
            policy=key_policy.KeyPolicy(expiry_required=bool(expiry_required)),
            policy_value=text,
            policy_error=error.message,
            policy_saved=False,
        )
        return render(request, "keys/index.html", context, status_code=400)
    return redirect(request, _keys_url(app) + "?policy=saved#key-policy")


@router.get("/new")
async def new_key_form(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.KEYS_MANAGE)
) -> Response:
    policy = (await _policy_context(db, app))["policy"]
    return await _form_page(
        request, db, viewer, app, KeyForm(expires_in=_first_allowed_expiry(policy))
    )


@router.post("")
async def create_key(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    name: Name = "",
    role: RoleField = None,
    permissions: PermissionsField = None,
    expires_in: ExpiresIn = "never",
    expires_on: ExpiresOn = "",
    rate_limit: RateLimitField = "",
    allowed_cidrs: CidrsField = "",
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    form = KeyForm(
        name=name,
        role=role or None,
        permissions=permissions or [],
        expires_in=expires_in,
        expires_on=expires_on,
        rate_limit=rate_limit,
        allowed_cidrs=allowed_cidrs,
    )
    try:
        expires_at = form.expiry_value()
        rate_limit_per_minute = form.rate_limit_value()
        cidrs = form.cidrs_value()
        if form.errors:
            raise FormInvalid()
        new = await keys.create_key(
            db,
            actor=viewer.actor,
            pepper=request.app.state.gateway.pepper,
            app_id=app.id,
            name=name,
            role=form.role,
            permissions=form.permissions,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
            allowed_cidrs=cidrs,
        )
    except FormInvalid:
        return await _form_page(request, db, viewer, app, form, status_code=400)
    except (BadRequest, Conflict, Forbidden, InvalidPermissions) as error:
        form.errors[_field_of(error)] = error.message
        return await _form_page(request, db, viewer, app, form, status_code=error.status_code)
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        key=keys.to_public(new.key),
        plaintext=new.plaintext,
        rolled=False,
        rolled_until=None,
        env_lines=_env_lines(new.plaintext, app),
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
    expires_on: ExpiresOn = "",
    rate_limit: RateLimitField = "",
    allowed_cidrs: CidrsField = "",
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    form = KeyForm(
        name=name,
        role=role or None,
        permissions=permissions or [],
        expires_in=expires_in,
        expires_on=expires_on,
        rate_limit=rate_limit,
        allowed_cidrs=allowed_cidrs,
    )
    changes: dict[str, Any] = {
        "name": name,
        "role": form.role,
        "permissions": form.permissions,
        "rate_limit_per_minute": form.rate_limit_value(),
        "allowed_cidrs": form.cidrs_value(),
    }
    try:
        if expires_in != KEEP:
            changes["expires_at"] = form.expiry_value()
        if form.role is None:
            # The service reads "no role, no permissions" as "leave as is"; the form means none.
            form.errors["role"] = InvalidPermissions.message
        if form.errors:
            raise FormInvalid()
        await keys.edit_key(db, actor=viewer.actor, key=key, **changes)
    except (BadRequest, Conflict, Forbidden, InvalidPermissions, FormInvalid) as error:
        await db.rollback()
        key = await keys.get_key(db, app_id=app.id, key_id=key_id)
        status_code = 400
        if isinstance(error, ApiError):
            form.errors[_field_of(error)] = error.message
            status_code = error.status_code
        return await _form_page(request, db, viewer, app, form, key=key, status_code=status_code)
    return _changed(request, app)


@router.get("/{key_id}/delete")
async def delete_key_form(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    key_id: KeyId,
    viewer: Viewer = allowed(Action.KEYS_MANAGE),
) -> Response:
    # Live: a key used seconds ago, in this process, is "used recently" already.
    await write_pending(request.app.state.gateway)
    key = await keys.get_key(db, app_id=app.id, key_id=key_id)
    recently_used = key.last_used_at is not None and utcnow() - key.last_used_at <= RECENT_USE
    context = await page_context(request, db, viewer, app, "api-keys")
    context.update(
        key=keys.to_public(key), display_name=keys.base_name(key), recently_used=recently_used
    )
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
        env_lines=_env_lines(new.plaintext, app),
    )
    return render(request, "keys/secret.html", context, headers={"HX-Trigger": "keys-changed"})


def _env_lines(plaintext: str, app: AppRef) -> str:
    """What a deployment's environment needs, as the SDKs read it."""
    return f"AGENTMARK_API_KEY={plaintext}\nAGENTMARK_APP_ID={app.id}"
