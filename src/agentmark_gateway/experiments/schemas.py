"""Experiment wire shapes.

Reads follow the reference API, which spells experiments in camelCase
(``datasetPath``, ``itemCount``, ``avgScore``); bodies accept camelCase and
snake_case alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from agentmark_gateway.pagination import Pagination
from agentmark_gateway.scores.schemas import FiniteNumber, JsonObject, JsonValue, Text

MAX_ITEMS = 10_000
MAX_SCORES_PER_ITEM = 100

CAMEL = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class ItemScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=255)]
    score: FiniteNumber
    label: Annotated[Text | None, Field(max_length=255)] = None
    reason: Annotated[Text | None, Field(max_length=10_000)] = None


class ItemCreate(BaseModel):
    model_config = ConfigDict(**CAMEL, extra="forbid")

    input: JsonValue = Field(description="The dataset row's input.")
    expected_output: JsonValue = None
    output: JsonValue = Field(default=None, description="What the prompt produced.")
    trace_id: Annotated[
        Text | None,
        Field(min_length=1, max_length=32, description="The trace this item ran in."),
    ] = None
    scores: list[ItemScore] = Field(default_factory=list, max_length=MAX_SCORES_PER_ITEM)
    error: Annotated[Text | None, Field(max_length=65_536)] = None


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(**CAMEL, extra="forbid")

    name: Annotated[Text, Field(min_length=1, max_length=255)]
    experiment_key: Annotated[
        Text | None,
        Field(
            min_length=1,
            max_length=255,
            description="Groups runs of the same experiment; baselines are looked up by it.",
        ),
    ] = None
    dataset_path: Annotated[Text, Field(min_length=1, max_length=1024)]
    prompt_path: Annotated[Text, Field(min_length=1, max_length=1024)]
    commit_sha: Annotated[Text | None, Field(min_length=1, max_length=64)] = None
    tree_hash: Annotated[
        Text | None,
        Field(min_length=1, max_length=64, description="Hash of the sources the run used."),
    ] = None
    metadata: JsonObject | None = None
    items: list[ItemCreate] = Field(default_factory=list, max_length=MAX_ITEMS)


class ScoreSummary(BaseModel):
    model_config = CAMEL

    name: str
    count: int
    avg_score: float
    min_score: float
    max_score: float


class ItemPublic(BaseModel):
    model_config = CAMEL

    position: int
    trace_id: str | None
    input: Any
    expected_output: Any
    output: Any
    scores: list[ItemScore]
    error: str | None
    # From the item's trace, once its spans have arrived; null until then.
    latency_ms: float | None = None
    cost: float | None = None
    tokens: int | None = None
    model: str | None = None


class ExperimentSummary(BaseModel):
    model_config = CAMEL

    id: str
    name: str
    experiment_key: str | None
    dataset_path: str | None
    prompt_path: str | None
    # The reference API's name for the prompt; the same value as promptPath.
    prompt_name: str | None
    commit_sha: str | None
    tree_hash: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    item_count: int
    error_count: int
    avg_score: float | None = Field(description="Mean of every item score, all names together.")
    score_summaries: list[ScoreSummary]
    avg_latency_ms: float | None = Field(description="Mean trace latency of items with a trace.")
    total_cost: float
    total_tokens: int


class ExperimentDetail(ExperimentSummary):
    items: list[ItemPublic]


class ExperimentPage(BaseModel):
    data: list[ExperimentSummary]
    pagination: Pagination
