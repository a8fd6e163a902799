"""Wire shapes of keys. Only ``ApiKeyCreated`` can carry the raw value."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from agentmark_gateway.netaccess import MAX_CIDRS
from agentmark_gateway.permissions.catalog import ALIASES, PERMISSIONS, ROLES
from agentmark_gateway.request_body import RequestBody

MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_RATE_LIMIT_PER_MINUTE = 10_000_000

RATE_LIMIT_HELP = (
    "The key's own limit in requests per minute; null or 0: the gateway's default "
    "(AGENTMARK_RATE_LIMIT_PER_KEY). Over it, requests get 429 rate_limited."
)
CIDRS_HELP = (
    "IP allowlist: CIDRs (IPv4 or IPv6, e.g. 203.0.113.0/24, 2001:db8::/32, or one "
    "address). Requests from elsewhere get 401. null or []: any address."
)


# Documented choices only (the service checks them, with its own messages): clients and
# schema-driven testers see which values exist.
ROLE_CHOICES: dict[str, Any] = {"enum": [*ROLES, None]}
Permission = Annotated[
    str, Field(json_schema_extra={"enum": [*(p.name for p in PERMISSIONS), *ALIASES]})
]


def _rate_limit() -> Any:
    return Field(
        default=None, ge=0, le=MAX_RATE_LIMIT_PER_MINUTE, strict=True, description=RATE_LIMIT_HELP
    )


def _cidrs() -> Any:
    return Field(default=None, max_length=MAX_CIDRS, description=CIDRS_HELP)


class ApiKeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255)
    role: str | None = Field(
        default=None,
        description="sdk, read-only, full-access or custom",
        json_schema_extra=ROLE_CHOICES,
    )
    permissions: list[Permission] | None = Field(
        default=None, description="For custom keys; given alone it means role custom."
    )
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = _rate_limit()
    allowed_cidrs: list[str] | None = _cidrs()
    app_id: str | None = Field(
        default=None, description="The app, when not given in X-Agentmark-App-Id."
    )


class ApiKeyUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: str | None = Field(default=None, json_schema_extra=ROLE_CHOICES)
    permissions: list[Permission] | None = None
    expires_at: datetime | None = None
    rate_limit_per_minute: int | None = _rate_limit()
    allowed_cidrs: list[str] | None = _cidrs()


class ApiKeyRoll(RequestBody):
    grace_seconds: int = Field(default=0, ge=0, le=MAX_GRACE_SECONDS)


class ApiKeyPublic(BaseModel):
    """A key as lists and details show it: never the value, never its digest."""

    id: str
    name: str
    app_id: str
    role: str
    permissions: list[str]
    key_prefix: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    expiring_soon: bool = Field(
        description="True when expires_at is within 7 days (or already past): time to "
        "roll the key or extend its expiry."
    )
    rate_limit_per_minute: int | None = Field(
        default=None, description="The key's own limit; null: the gateway's default applies."
    )
    allowed_cidrs: list[str] | None = Field(
        default=None, description="The key's IP allowlist; null: any address."
    )
    rolled_to: str | None = Field(
        default=None,
        description="Set on a rolled key being retired: the id of the key that replaced it "
        "(this one ends at expires_at).",
    )


class ApiKeyCreated(ApiKeyPublic):
    plaintext_key: str = Field(description="The key value. Shown in this response only.")


class ApiKeyRolled(ApiKeyCreated):
    previous_key_id: str
    previous_key_expires_at: datetime | None
