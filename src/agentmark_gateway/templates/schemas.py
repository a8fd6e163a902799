"""Wire shapes of /v1/templates and /v1/prompts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

# What the published loaders send as ``promptKind``; a hint we accept and do not need.
PromptKind = Literal["text", "object", "image", "speech"]


class TemplateContent(BaseModel):
    """A template's AST (``.mdx``/``.json``), or a dataset's rows as a JSON array (``.jsonl``)."""

    data: dict[str, Any] | list[dict[str, Any]]


class Published(BaseModel):
    """What a PUT stored: a template, or a dataset with its new row count."""

    path: str
    kind: Literal["template", "dataset"]
    row_count: int | None = None
    created_at: datetime
    updated_at: datetime


class PublishedResponse(BaseModel):
    data: Published


class PromptPaths(BaseModel):
    paths: list[str]


class PromptPathsResponse(BaseModel):
    data: PromptPaths
