from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentmark_gateway.request_body import RequestBody


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    role: str


class MemberPublic(UserPublic):
    created_at: datetime
    pending: bool = Field(description="Invited, has not set a password yet.")


# Documented choices only; the service checks them with its own messages.
ROLE_CHOICES: dict[str, Any] = {"enum": ["owner", "admin", "write", "read"]}


class MemberInvite(RequestBody):
    email: str = Field(min_length=3, max_length=320, json_schema_extra={"format": "email"})
    role: str = Field(default="read", json_schema_extra=ROLE_CHOICES)


class MemberUpdate(RequestBody):
    role: str = Field(json_schema_extra=ROLE_CHOICES)


class MemberInvited(MemberPublic):
    invite_url: str = Field(description="One-time link that sets the password. Shown once.")
