"""Score wire shapes: one schema per direction, plus the value checks both features share.

Bodies accept snake_case (the reference API) and camelCase (what the published
``agentmark-sdk`` posts). Every string and JSON value is checked so that what
passes validation can be stored on SQLite and PostgreSQL alike: PostgreSQL
refuses NUL characters and JSON ``NaN``, and no driver can encode a lone
surrogate, so those are 400s here instead of 500s at insert time.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from agentmark_gateway.jsonvalues import check_depth
from agentmark_gateway.pagination import Pagination

MAX_BATCH_ITEMS = 1000
MAX_CLIENT_ID = 128
DEFAULT_SOURCE = "api"


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def check_json(value: Any) -> Any:
    """Walks a JSON value (iteratively: its depth is counted, never recursed into)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
        elif isinstance(item, dict):
            check_depth(depth)
            for key in item:
                check_text(str(key))
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            check_depth(depth)
            stack.extend((child, depth + 1) for child in item)
    return value


Text = Annotated[str, AfterValidator(check_text)]
JsonValue = Annotated[Any, AfterValidator(check_json)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
# Far beyond any real score, and small enough that sums and means of millions of
# them cannot overflow (PostgreSQL's avg() would fail, SQLite's would be infinite).
MAX_SCORE_MAGNITUDE = 1e15
# strict: 1 and 0.5 are scores, "0.5" and true are not.
FiniteNumber = Annotated[
    float,
    Field(strict=True, allow_inf_nan=False, ge=-MAX_SCORE_MAGNITUDE, le=MAX_SCORE_MAGNITUDE),
]


class ScoreCreate(BaseModel):
    # Unknown fields are ignored so that newer SDKs sending extra keys keep working.
    model_config = ConfigDict(extra="ignore")

    resource_id: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=255,
            validation_alias=AliasChoices("resource_id", "resourceId"),
            description="The trace or span id the score is about (also accepted as resourceId).",
        ),
    ]
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    score: FiniteNumber
    label: Annotated[Text | None, Field(max_length=255)] = None
    reason: Annotated[Text | None, Field(max_length=10_000)] = None
    type: Annotated[Text | None, Field(max_length=64)] = None
    source: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=64,
            description="Where the score came from, e.g. api, eval or annotation.",
        ),
    ] = DEFAULT_SOURCE
    metadata: JsonObject | None = None


class ScoreBatchItem(ScoreCreate):
    client_id: Annotated[
        Text | None,
        Field(
            max_length=MAX_CLIENT_ID,
            validation_alias=AliasChoices("client_id", "clientId"),
            description="Echoed in this item's result to correlate it; never stored.",
        ),
    ] = None


class ScoreBatch(BaseModel):
    # Items are validated one by one (a bad item fails alone), so the envelope
    # takes any JSON value and only documents the item shape.
    scores: list[
        Annotated[Any, WithJsonSchema(ScoreBatchItem.model_json_schema(mode="validation"))]
    ] = Field(min_length=1, description=f"1 to {MAX_BATCH_ITEMS} scores.")


class ScorePublic(BaseModel):
    id: str
    resource_id: str
    name: str
    score: float
    label: str | None
    reason: str | None
    type: str | None
    source: str
    metadata: dict[str, Any] | None
    created_at: datetime


class ScorePage(BaseModel):
    data: list[ScorePublic]
    pagination: Pagination


class ScoreCreated(ScorePublic):
    message: str = "Score created"


class ItemError(BaseModel):
    code: str
    message: str
    details: list[dict[str, str]] | None = None


class BatchItemResult(BaseModel):
    index: int
    status: Literal["success", "error"]
    id: str | None = None
    client_id: str | None = None
    error: ItemError | None = None


class BatchSummary(BaseModel):
    total: int
    succeeded: int
    failed: int


class BatchResult(BaseModel):
    results: list[BatchItemResult]
    summary: BatchSummary


class ScoreAggregation(BaseModel):
    name: str
    count: int
    avg_score: float
    min_score: float
    max_score: float
    labels: dict[str, int] = Field(description="How many scores of this name carry each label.")
