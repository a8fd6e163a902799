from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway import moments
from agentmark_gateway.api_keys import service
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.schemas import (
    MAX_GRACE_SECONDS,
    MAX_RATE_LIMIT_PER_MINUTE,
    ApiKeyPublic,
)
from agentmark_gateway.apps.service import find_app
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.cli import key_usage
from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import cell, render
from agentmark_gateway.settings import Settings

app = typer.Typer(
    help="API keys: create, list, show, edit, delete, roll; usage and advice.",
    no_args_is_help=True,
)

AppOption = Annotated[str, typer.Option("--app", help="App id or name")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Key id or name")]
RateLimitOption = Annotated[
    int | None,
    typer.Option(
        "--rate-limit",
        min=1,
        max=MAX_RATE_LIMIT_PER_MINUTE,
        help="The key's own limit in requests per minute (else the gateway default)",
    ),
]
AllowCidrOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-cidr",
        help="Accept requests only from this CIDR or address, IPv4 or IPv6 (repeat for several)",
    ),
]
SHOWN_ONCE = "Copy this key now: it will not be shown again."


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


def _parse_expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = moments.read(value)
    except ValueError:
        raise typer.BadParameter("use ISO 8601, e.g. 2027-01-31T00:00:00Z") from None
    # A bare date or a zoneless time would depend on where the command runs.
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2027-01-31T00:00:00Z")
    return moment


def _expires(public: ApiKeyPublic) -> str:
    text = _when(public.expires_at)
    return f"{text} (within 7 days)" if public.expiring_soon else text


def _rate_limit(public: ApiKeyPublic, default: int) -> str:
    if public.rate_limit_per_minute:
        return f"{public.rate_limit_per_minute}/min"
    return f"default ({default}/min)" if default else "default (none)"


def _allowlist(public: ApiKeyPublic) -> str:
    return ", ".join(public.allowed_cidrs) if public.allowed_cidrs else "any address"


def _print_once(plaintext: str) -> None:
    typer.echo(plaintext)
    typer.secho(SHOWN_ONCE, fg=typer.colors.YELLOW, err=True)


@app.command("create")
def create(
    app_ref: AppOption,
    name: Annotated[str, typer.Option("--name", help="Unique in the app")],
    role: Annotated[
        str | None, typer.Option("--role", help="sdk, read-only, full-access or custom")
    ] = None,
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="A permission (repeat for several)")
    ] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601 time")] = None,
    rate_limit: RateLimitOption = None,
    allow_cidr: AllowCidrOption = None,
) -> None:
    """Create a key and print its value once."""
    expiry = _parse_expiry(expires_at)

    async def work(session: AsyncSession, settings: Settings) -> str:
        target = await find_app(session, app_ref)
        new = await service.create_key(
            session,
            actor=CLI_ACTOR,
            pepper=settings.pepper_bytes(),
            app_id=target.id,
            name=name,
            role=role,
            permissions=permission,
            expires_at=expiry,
            rate_limit_per_minute=rate_limit,
            allowed_cidrs=allow_cidr,
        )
        typer.echo(f"created {new.key.id} ({new.key.role})", err=True)
        return new.plaintext

    _print_once(run(work))


LIST_PAGE = 1000


@app.command("list")
def list_keys(
    app_ref: AppOption,
    unused_days: Annotated[
        int | None,
        typer.Option(
            "--unused-days",
            min=1,
            max=3650,
            help="Only keys not used in this many days (and made before then)",
        ),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only keys whose name contains this")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", help="Only keys of this role")] = None,
    expiring_soon: Annotated[
        bool, typer.Option("--expiring-soon", help="Only keys expiring within 7 days")
    ] = False,
    sort: Annotated[
        str,
        typer.Option("--sort", help="name, created or last_used; '-' first: descending"),
    ] = service.DEFAULT_SORT,
) -> None:
    """An app's keys (never their values), all of them, newest first."""
    if sort not in service.SORTS:
        raise typer.BadParameter(f"use one of {', '.join(service.SORTS)}", param_hint="--sort")
    where = service.KeyFilter(
        search=search, role=role, expiring_soon=expiring_soon, unused_days=unused_days
    )

    async def work(session: AsyncSession, settings: Settings) -> list[list[object]]:
        target = await find_app(session, app_ref)
        keys: list[ApiKey] = []
        while True:
            page, total = await service.list_keys(
                session,
                app_id=target.id,
                limit=LIST_PAGE,
                offset=len(keys),
                where=where,
                sort=sort,
            )
            keys += page
            if not page or len(keys) >= total:
                break
        rows: list[list[object]] = []
        for key in keys:
            public = service.to_public(key)
            rows.append(
                [
                    public.id,
                    public.name,
                    public.role,
                    public.key_prefix,
                    _when(public.last_used_at),
                    _expires(public),
                    _rate_limit(public, settings.rate_limit_per_key),
                    _allowlist(public),
                ]
            )
        return rows

    headers = ["ID", "NAME", "ROLE", "KEY", "LAST USED", "EXPIRES", "RATE LIMIT", "ALLOWED IPS"]
    typer.echo(render(headers, run(work)))


@app.command("show")
def show(app_ref: AppOption, key_ref: KeyArg) -> None:
    """One key: role, resolved permissions, times."""

    async def work(session: AsyncSession, settings: Settings) -> list[list[object]]:
        target = await find_app(session, app_ref)
        public = service.to_public(
            await service.find_key(session, app_id=target.id, id_or_name=key_ref)
        )
        return [
            ["id", public.id],
            ["name", public.name],
            ["app", public.app_id],
            ["role", public.role],
            ["permissions", ", ".join(public.permissions)],
            ["key", public.key_prefix],
            ["created by", public.created_by],
            ["created", _when(public.created_at)],
            ["updated", _when(public.updated_at)],
            ["last used", _when(public.last_used_at)],
            ["expires", _expires(public)],
            ["rate limit", _rate_limit(public, settings.rate_limit_per_key)],
            ["allowed IPs", _allowlist(public)],
        ]

    typer.echo(render(["FIELD", "VALUE"], run(work)))


@app.command("edit")
def edit(
    app_ref: AppOption,
    key_ref: KeyArg,
    name: Annotated[str | None, typer.Option("--name")] = None,
    role: Annotated[str | None, typer.Option("--role")] = None,
    permission: Annotated[list[str] | None, typer.Option("--permission")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at")] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Remove the expiry")] = False,
    rate_limit: RateLimitOption = None,
    no_rate_limit: Annotated[
        bool,
        typer.Option("--no-rate-limit", help="Drop the key's own limit; the default applies"),
    ] = False,
    allow_cidr: AllowCidrOption = None,
    no_allowlist: Annotated[
        bool, typer.Option("--no-allowlist", help="Accept requests from any address")
    ] = False,
) -> None:
    """Change name, role, permissions, expiry, rate limit or IP allowlist. The key value
    stays the same. --allow-cidr replaces the whole allowlist."""
    expiry = _parse_expiry(expires_at)
    if rate_limit is not None and no_rate_limit:
        raise typer.BadParameter("give --rate-limit or --no-rate-limit, not both")
    if allow_cidr and no_allowlist:
        raise typer.BadParameter("give --allow-cidr or --no-allowlist, not both")

    async def work(session: AsyncSession, _: Settings) -> str:
        target = await find_app(session, app_ref)
        key = await service.find_key(session, app_id=target.id, id_or_name=key_ref)
        changes: dict[str, object] = {"name": name, "role": role, "permissions": permission}
        if expiry is not None or no_expiry:
            changes["expires_at"] = expiry
        if rate_limit is not None or no_rate_limit:
            changes["rate_limit_per_minute"] = rate_limit
        if allow_cidr or no_allowlist:
            changes["allowed_cidrs"] = allow_cidr or None
        key = await service.edit_key(session, actor=CLI_ACTOR, key=key, **changes)  # type: ignore[arg-type]
        public = service.to_public(key)
        return f"{public.id} {cell(public.name)}: {public.role} [{', '.join(public.permissions)}]"

    typer.echo(run(work))


@app.command("delete")
def delete(
    app_ref: AppOption,
    key_ref: KeyArg,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
) -> None:
    """Delete a key; the next request with it gets 401."""
    if not yes:
        typer.confirm(f"Delete key {key_ref}? Requests using it will fail at once.", abort=True)

    async def work(session: AsyncSession, _: Settings) -> str:
        target = await find_app(session, app_ref)
        key = await service.find_key(session, app_id=target.id, id_or_name=key_ref)
        await service.delete_key(session, actor=CLI_ACTOR, key=key)
        return key.id

    typer.echo(f"deleted {run(work)}")


@app.command("roll")
def roll(
    app_ref: AppOption,
    key_ref: KeyArg,
    grace_seconds: Annotated[
        int,
        typer.Option(
            "--grace-seconds",
            min=0,
            max=MAX_GRACE_SECONDS,
            help="How long the old key keeps working",
        ),
    ] = 0,
) -> None:
    """New value, same permissions; the old value works for the grace period, then 401."""

    async def work(session: AsyncSession, settings: Settings) -> str:
        target = await find_app(session, app_ref)
        key = await service.find_key(session, app_id=target.id, id_or_name=key_ref)
        new, old_ends = await service.roll_key(
            session,
            actor=CLI_ACTOR,
            pepper=settings.pepper_bytes(),
            key=key,
            grace_seconds=grace_seconds,
        )
        typer.echo(f"rolled {key.id} -> {new.key.id}; old key ends {_when(old_ends)}", err=True)
        return new.plaintext

    _print_once(run(work))


app.command("usage")(key_usage.usage)
app.command("advice")(key_usage.advice)
