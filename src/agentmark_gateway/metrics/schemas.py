"""Wire shape of ``GET /v1/metrics`` (after the reference API, plus p95 and LLM calls)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Bucket = Literal["hour", "day"]


class MetricsSummary(BaseModel):
    total_requests: int = Field(description="Traces that started in the range.")
    success_count: int = Field(description="Traces without a failed span.")
    error_count: int = Field(description="Traces with at least one failed span.")
    llm_calls: int = Field(description="Model-call spans (GENERATION) in those traces.")
    total_cost: float = Field(description="USD.")
    total_tokens: int
    input_tokens: int
    output_tokens: int
    avg_latency_ms: float = Field(description="Mean trace duration.")
    p50_latency_ms: float = Field(description="Median trace duration (nearest rank).")
    p95_latency_ms: float = Field(description="95th percentile trace duration (nearest rank).")
    unique_users: int
    model_count: int
    avg_cost_per_request: float
    avg_input_tokens_per_request: float
    avg_output_tokens_per_request: float
    avg_total_tokens_per_request: float


class MetricsPoint(BaseModel):
    start: dt.datetime = Field(description="Start of the bucket (UTC).")
    date: dt.date
    hour: int = Field(description="Hour of the bucket (0 for daily buckets).")
    requests: int
    successes: int
    errors: int
    cost: float
    tokens: int
    input_tokens: int
    output_tokens: int
    avg_latency_ms: float
    p50_latency_ms: float = Field(description="Median trace duration (nearest rank).")
    p95_latency_ms: float = Field(description="95th percentile trace duration (nearest rank).")
    unique_users: int


class ModelMetrics(BaseModel):
    """One model's calls (spans naming it) in the traces of the range."""

    model: str
    calls: int
    errors: int = Field(description="Calls whose span failed.")
    cost: float = Field(description="USD.")
    input_tokens: int
    output_tokens: int
    p50_latency_ms: float = Field(description="Median call duration (nearest rank).")
    p95_latency_ms: float = Field(description="95th percentile call duration (nearest rank).")


class MetricsReport(BaseModel):
    start_date: dt.datetime
    end_date: dt.datetime
    bucket: Bucket
    summary: MetricsSummary
    time_series: list[MetricsPoint]
    by_model: list[ModelMetrics] = Field(description="Most calls first.")


class MetricsResponse(BaseModel):
    data: MetricsReport
