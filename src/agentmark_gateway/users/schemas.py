from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    email: str
    role: str


class MemberPublic(UserPublic):
    created_at: datetime
    pending: bool = Field(description="Invited, has not set a password yet.")


class MemberInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    role: str = "read"


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str


class MemberInvited(MemberPublic):
    invite_url: str = Field(description="One-time link that sets the password. Shown once.")
