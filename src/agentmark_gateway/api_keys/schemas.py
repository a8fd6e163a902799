"""Wire shapes of keys. Only ``ApiKeyCreated`` can carry the raw value."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

MAX_GRACE_SECONDS = 7 * 24 * 3600


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    role: str | None = Field(default=None, description="sdk, read-only, full-access or custom")
    permissions: list[str] | None = Field(
        default=None, description="For custom keys; given alone it means role custom."
    )
    expires_at: datetime | None = None
    app_id: str | None = Field(
        default=None, description="The app, when not given in X-Agentmark-App-Id."
    )


class ApiKeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: str | None = None
    permissions: list[str] | None = None
    expires_at: datetime | None = None


class ApiKeyRoll(BaseModel):
    model_config = ConfigDict(extra="forbid")
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
    expiring_soon: bool = Field(description="Expires within 7 days.")


class ApiKeyCreated(ApiKeyPublic):
    plaintext_key: str = Field(description="The key value. Shown in this response only.")


class ApiKeyRolled(ApiKeyCreated):
    previous_key_id: str
    previous_key_expires_at: datetime | None
