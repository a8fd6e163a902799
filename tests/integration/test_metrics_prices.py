"""Operator prices (settings.model_prices) price spans at ingest, over the shipped table."""

from __future__ import annotations

import pytest

from tests.fixtures.otlp import payloads
from tests.fixtures.otlp.payloads import at


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "model_prices": {
                "house-model": {"input": 100.0, "output": 200.0},
                "gpt-4o": {"input": 1.0, "output": 1.0},
            }
        }
    )


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


def test_configured_prices_are_used_for_cost(client, headers):
    for model in ("house-model-2025", "gpt-4o", "gpt-4o-mini", "unpriced-model"):
        _, spans = payloads.llm_trace(
            start_ns=at("2025-05-01T10:00:00Z"),
            model=model,
            input_tokens=10_000,
            output_tokens=1_000,
        )
        payloads.post(client, headers, spans)

    costs = {
        s["model"]: s["cost"]
        for s in client.get("/v1/spans", params={"type": "GENERATION"}, headers=headers).json()[
            "data"
        ]
    }
    assert costs == {
        "house-model-2025": pytest.approx(1.0 + 0.2),
        "gpt-4o": pytest.approx(0.011),
        "gpt-4o-mini": pytest.approx(0.0015 + 0.0006),
        "unpriced-model": 0.0,
    }
    summary = client.get(
        "/v1/metrics",
        params={"start_date": "2025-05-01", "end_date": "2025-05-01"},
        headers=headers,
    ).json()["data"]["summary"]
    assert summary["total_cost"] == pytest.approx(1.2 + 0.011 + 0.0021)
