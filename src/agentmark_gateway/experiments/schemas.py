"""Experiment wire shapes, as the reference API spells them (camelCase).

``input``, ``expectedOutput`` and ``output`` are text, as the clients recorded
them on the spans (JSON text for structured values), never parsed objects.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from agentmark_gateway.pagination import Pagination

CAMEL = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class ScorerSummary(BaseModel):
    """One scorer (score name) over a run."""

    model_config = CAMEL

    name: str
    count: int
    avg_score: float
    min_score: float
    max_score: float


class ExperimentSummary(BaseModel):
    model_config = CAMEL

    id: str = Field(description="The run's id (agentmark.dataset_run_id).")
    name: str = Field(description="agentmark.dataset_run_name, else the id.")
    prompt_name: str
    dataset_path: str
    item_count: int = Field(description="Rows of the run: one trace each.")
    avg_latency_ms: float = Field(description="Mean duration of the rows' root spans.")
    total_cost: float
    total_tokens: int
    avg_score: float | None = Field(description="Mean of every score of the run's rows.")
    error_count: int = Field(description="Rows whose trace has a failed span.")
    scorers: list[ScorerSummary] = Field(description="Per-scorer averages, by name.")
    experiment_key: str | None
    tree_hash: str | None
    created_at: datetime = Field(description="When the run's first spans were stored (UTC).")
    commit_sha: str


class ItemScore(BaseModel):
    name: str
    score: float
    label: str
    reason: str


class ExperimentItem(BaseModel):
    model_config = CAMEL

    trace_id: str
    item_name: str
    input: str
    expected_output: str
    output: str
    latency_ms: float
    cost: float
    tokens: int
    model: str
    scores: list[ItemScore] = Field(description="Every score of the row's trace, oldest first.")
    error: str | None = Field(description="Status message of the trace's failed span, if any.")


class ExperimentDetail(ExperimentSummary):
    items: list[ExperimentItem]


class ExperimentPage(BaseModel):
    data: list[ExperimentSummary]
    pagination: Pagination


class BaselineRun(BaseModel):
    runId: str
    treeHash: str
    matchedExactCommit: bool = Field(description="Whether the run is at the asked tree hash.")


class BaselineRow(BaseModel):
    inputHash: str = Field(description="prompt-core's hashRowInput of the row's input.")
    scorer: str
    score: float


class Baseline(BaseModel):
    resolved: BaselineRun | None = Field(description="Null when the experiment has no run.")
    rows: list[BaselineRow]


class BaselineResponse(BaseModel):
    data: Baseline
