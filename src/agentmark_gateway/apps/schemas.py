from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentmark_gateway.api_keys.policy import (
    EXPIRY_REQUIRED_HELP,
    MAX_LIFETIME_DAYS,
    MAX_LIFETIME_HELP,
)
from agentmark_gateway.request_body import RequestBody

MAX_RETENTION_DAYS = 3650

RETENTION_HELP = (
    "Days the app's traces are kept, with their spans and scores (0: for ever); "
    "null: the gateway's default (AGENTMARK_RETENTION_DAYS)."
)


def _retention() -> Any:
    return Field(default=None, ge=0, le=MAX_RETENTION_DAYS, strict=True, description=RETENTION_HELP)


class AppCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255)
    retention_days: int | None = _retention()


class AppUpdate(RequestBody):
    """Only the fields sent change; ``retention_days: null`` goes back to the default."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    retention_days: int | None = _retention()
    key_max_lifetime_days: int | None = Field(
        default=None, ge=1, le=MAX_LIFETIME_DAYS, strict=True, description=MAX_LIFETIME_HELP
    )
    key_expiry_required: bool | None = Field(
        default=None, strict=True, description=EXPIRY_REQUIRED_HELP
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> AppUpdate:
        if not self.model_fields_set:
            raise ValueError(
                "give name, retention_days, key_max_lifetime_days or key_expiry_required"
            )
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class AppPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    retention_days: int | None = Field(description=RETENTION_HELP)
    key_max_lifetime_days: int | None = Field(default=None, description=MAX_LIFETIME_HELP)
    key_expiry_required: bool = Field(default=False, description=EXPIRY_REQUIRED_HELP)
    created_at: datetime
    updated_at: datetime
