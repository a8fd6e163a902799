from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from agentmark_gateway.request_body import RequestBody


class AppCreate(RequestBody):
    name: str = Field(min_length=1, max_length=255)


class AppUpdate(RequestBody):
    name: str = Field(min_length=1, max_length=255)


class AppPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
