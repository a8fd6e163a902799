"""Runs stored by the removed POST /v1/experiments read the same after the upgrade that
turns them into spans and scores (migration 20261206_0005)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy.dialects import postgresql

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine
from agentmark_gateway.settings import Settings
from agentmark_gateway.traces.models import Span
from tests.conftest import BACKEND, PEPPER, Admin, _pg_url, add_user, pg_database

BEFORE = "20261127_0004"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
APP = "app_migrated"
RUN = "exp_storedrun"
TRACED = "0af7651916cd43dd8448eb211c80319c"  # an item whose spans were stored
UNSEEN = "4bf92f3577b34da6a3ce929d0e0e4736"  # an item naming a trace never stored
SDK_TRACE = "5b8efff798038103d269b633813fc60c"  # a row of a run the SDK recorded before
SDK_RUN = "6f1c0a52-3a8e-4f47-9b9e-2f8c1d0e7a11"
ADAPTER_TRACE = "9d3f2b7e61c84a0f8e5d4c3b2a190817"  # a row of the old AI SDK adapter's run
ADAPTER_RUN = "2c9e7f1a-5b3d-4e6f-8a0b-1c2d3e4f5a6b"
RECORDED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# The stored trace ran a second before the run was recorded.
START_NS = (int(RECORDED.timestamp()) - 1) * 1_000_000_000

apps = sa.table(
    "apps",
    sa.column("id"),
    sa.column("name"),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
traces = sa.table(
    "traces",
    *(sa.column(name) for name in ("app_id", "trace_id", "root_name", "first_name", "model")),
    *(sa.column(name) for name in ("start_time_ns", "end_time_ns", "span_count", "status_code")),
    *(sa.column(name) for name in ("input_tokens", "output_tokens", "cost", "dataset_run_id")),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
scores = sa.table(
    "scores",
    *(sa.column(name) for name in ("id", "app_id", "resource_id", "name", "score", "source")),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
experiments = sa.table(
    "experiments",
    *(sa.column(name) for name in ("id", "app_id", "name", "experiment_key", "dataset_path")),
    *(sa.column(name) for name in ("prompt_path", "commit_sha", "tree_hash")),
    sa.column("metadata", JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
api_keys = sa.table(
    "api_keys",
    *(sa.column(name) for name in ("id", "app_id", "name", "role", "digest", "display_prefix")),
    *(sa.column(name) for name in ("created_by",)),
    sa.column("permissions", JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
OLD_KEY = "key_oldexperimentwriter"
items = sa.table(
    "experiment_items",
    *(sa.column(name) for name in ("experiment_id", "position", "trace_id", "error")),
    *(sa.column(name, JSON) for name in ("input", "expected_output", "output", "scores")),
)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if BACKEND == "postgresql":
        with pg_database("agw_experiments_migration") as name:
            yield _pg_url(name)
    else:
        yield f"sqlite:///{tmp_path / 'gateway.db'}"


def span(trace_id: str, span_id: str, parent: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "app_id": APP,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": fields.pop("name", "answer"),
        "kind": 1,
        "start_time_ns": START_NS,
        "end_time_ns": START_NS + 250_000_000,
        "duration_ms": 250.0,
        "status_code": 0,
        "attributes": {},
        "resource_attributes": {},
        "events": [],
        "links": [],
        "tags": [],
        "input_tokens": 0,
        "output_tokens": 0,
        "received_at": RECORDED,
        **fields,
    }


async def store_old_run(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as db:
            await db.execute(
                apps.insert().values(id=APP, name="old", created_at=RECORDED, updated_at=RECORDED)
            )
            await db.execute(
                sa.insert(Span.__table__),
                [
                    span(TRACED, "00f067aa0ba902b7", None),
                    span(
                        TRACED,
                        "b7ad6b7169203331",
                        "00f067aa0ba902b7",
                        name="chat",
                        model="gpt-4o",
                        input_tokens=30,
                        output_tokens=12,
                        cost=0.5,
                    ),
                ],
            )
            await store_sdk_run(db)
            await store_adapter_run(db)
            await db.execute(
                api_keys.insert().values(
                    id=OLD_KEY,
                    app_id=APP,
                    name="old ci",
                    role="custom",
                    digest="0" * 64,
                    display_prefix="sk_agentmark_old",
                    created_by="cli",
                    permissions=["trace.read", "experiment.write", "experiment.read"],
                    created_at=RECORDED,
                    updated_at=RECORDED,
                )
            )
            await db.execute(
                traces.insert().values(
                    app_id=APP,
                    trace_id=TRACED,
                    root_name="answer",
                    first_name="answer",
                    model="gpt-4o",
                    start_time_ns=START_NS,
                    end_time_ns=START_NS + 250_000_000,
                    span_count=2,
                    status_code=0,
                    input_tokens=30,
                    output_tokens=12,
                    cost=0.5,
                    updated_at=RECORDED,
                )
            )
            await db.execute(
                experiments.insert().values(
                    id=RUN,
                    app_id=APP,
                    name="summaries v2",
                    experiment_key="summarize",
                    dataset_path="datasets/articles.jsonl",
                    prompt_path="prompts/summarize.prompt.mdx",
                    commit_sha="3f786850e387550fdab836ed7e6dc881de23001b",
                    tree_hash="tree-1",
                    metadata={"ci": True},
                    created_at=RECORDED,
                )
            )
            await db.execute(
                items.insert(),
                [
                    {
                        "experiment_id": RUN,
                        "position": 0,
                        "trace_id": TRACED,
                        "error": None,
                        "input": {"text": "First article"},
                        "expected_output": "first",
                        "output": "first summary",
                        "scores": [{"name": "correctness", "score": 1, "label": "pass"}],
                    },
                    {
                        "experiment_id": RUN,
                        "position": 1,
                        "trace_id": UNSEEN,
                        "error": None,
                        "input": {"text": "Second article"},
                        "expected_output": {"summary": "second"},
                        "output": "wrong",
                        "scores": [{"name": "correctness", "score": 0, "reason": "off topic"}],
                    },
                    {
                        "experiment_id": RUN,
                        "position": 2,
                        "trace_id": None,
                        "error": "RateLimitError: slow down",
                        "input": {"text": "Third article"},
                        "expected_output": None,
                        "output": None,
                        "scores": [],
                    },
                ],
            )
    finally:
        await engine.dispose()


async def store_sdk_run(db: Any) -> None:
    """A one-row run as runExperiment recorded it: the marks only in the raw attributes."""
    marks = {
        "agentmark.dataset_run_id": SDK_RUN,
        "agentmark.dataset_run_name": "math-eval",
        "agentmark.dataset_item_name": "0",
        "agentmark.dataset_path": "math.dataset.jsonl",
        "agentmark.dataset_input": '{"userMessage":"What is 5 + 7?"}',
        "agentmark.experiment_key": "math-eval",
        "agentmark.source_tree_hash": "tree-9",
        "agentmark.prompt_name": "math",
    }
    await db.execute(
        sa.insert(Span.__table__),
        [
            span(
                SDK_TRACE,
                "53995c3f42cd8ad8",
                None,
                name="math-eval",
                attributes=marks,
                dataset_run_id=SDK_RUN,
                prompt_name="math",
            )
        ],
    )
    await db.execute(
        traces.insert().values(
            app_id=APP,
            trace_id=SDK_TRACE,
            root_name="math-eval",
            first_name="math-eval",
            start_time_ns=START_NS,
            end_time_ns=START_NS + 250_000_000,
            span_count=1,
            status_code=0,
            input_tokens=0,
            output_tokens=0,
            cost=0.0,
            dataset_run_id=SDK_RUN,
            updated_at=RECORDED,
        )
    )
    await db.execute(
        scores.insert().values(
            id="score-1",
            app_id=APP,
            resource_id=SDK_TRACE,
            name="exact",
            score=1.0,
            source="experiment",
            created_at=RECORDED,
        )
    )


async def store_adapter_run(db: Any) -> None:
    """A one-row run of the old AI SDK adapter: its marks as telemetry metadata on the AI
    SDK's two spans, whose parent is in another trace; no run id derived at ingest."""
    ai = "ai.telemetry.metadata."
    marks = {
        f"{ai}dataset_run_id": ADAPTER_RUN,
        f"{ai}dataset_run_name": "legacy-eval",
        f"{ai}dataset_path": "legacy.dataset.jsonl",
        f"{ai}dataset_item_name": 0,
        f"{ai}dataset_expected_output": "12",
        f"{ai}prompt_name": "legacy.prompt.mdx",
        f"{ai}commit_sha": "c0ffee",
    }
    await db.execute(
        sa.insert(Span.__table__),
        [
            span(
                ADAPTER_TRACE,
                "1a2b3c4d5e6f7081",
                "ffeeddccbbaa9988",
                name="ai.generateText",
                attributes=marks,
                # One executemany: every row names the same columns.
                model=None,
                output=None,
            ),
            span(
                ADAPTER_TRACE,
                "2b3c4d5e6f708192",
                "1a2b3c4d5e6f7081",
                name="ai.generateText.doGenerate",
                attributes=marks,
                model="gpt-4o-mini",
                output="12",
            ),
        ],
    )
    await db.execute(
        traces.insert().values(
            app_id=APP,
            trace_id=ADAPTER_TRACE,
            root_name=None,
            first_name="ai.generateText",
            model="gpt-4o-mini",
            start_time_ns=START_NS,
            end_time_ns=START_NS + 250_000_000,
            span_count=2,
            status_code=0,
            input_tokens=0,
            output_tokens=0,
            cost=0.0,
            updated_at=RECORDED,
        )
    )


@pytest.fixture
def upgraded(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    command.upgrade(migrate.alembic_config(database_url), BEFORE)
    asyncio.run(store_old_run(database_url))
    command.upgrade(migrate.alembic_config(database_url), "head")
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER)
    with TestClient(create_app(settings)) as client:
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        key = admin.create_key(APP, role="full-access")
        yield client, {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": APP}


def test_a_stored_run_reads_the_same_after_the_upgrade(upgraded):
    client, headers = upgraded

    listed = client.get("/v1/experiments", headers=headers).json()["data"]
    [summary] = [run for run in listed if run["id"] == RUN]
    detail = client.get(f"/v1/experiments/{RUN}", headers=headers).json()["data"]

    assert summary["id"] == RUN
    assert (summary["name"], summary["experimentKey"], summary["treeHash"]) == (
        "summaries v2",
        "summarize",
        "tree-1",
    )
    assert summary["promptName"] == "prompts/summarize.prompt.mdx"
    assert summary["datasetPath"] == "datasets/articles.jsonl"
    assert summary["commitSha"] == "3f786850e387550fdab836ed7e6dc881de23001b"
    assert (summary["itemCount"], summary["errorCount"]) == (3, 1)
    assert summary["avgScore"] == 0.5
    traced, unseen, failed = detail["items"]
    # The stored trace is the item: its latency, tokens, cost and model are its spans'.
    assert traced["traceId"] == TRACED
    assert (traced["latencyMs"], traced["tokens"], traced["cost"]) == (250, 42, 0.5)
    assert traced["model"] == "gpt-4o"
    assert (traced["itemName"], traced["input"]) == ("0", '{"text":"First article"}')
    assert (traced["expectedOutput"], traced["output"]) == ("first", "first summary")
    assert traced["scores"] == [{"name": "correctness", "score": 1, "label": "pass", "reason": ""}]
    assert unseen["traceId"] == UNSEEN
    assert (unseen["expectedOutput"], unseen["output"]) == ('{"summary":"second"}', "wrong")
    assert unseen["scores"][0]["reason"] == "off topic"
    assert (failed["itemName"], failed["error"], failed["output"]) == (
        "2",
        "RateLimitError: slow down",
        "",
    )


def test_a_stored_run_is_a_baseline_after_the_upgrade(upgraded):
    client, headers = upgraded
    response = client.get(
        "/v1/experiments/baseline",
        params={"experiment_key": "summarize", "tree_hash": "tree-1"},
        headers=headers,
    )
    data = response.json()["data"]
    assert data["resolved"] == {"runId": RUN, "treeHash": "tree-1", "matchedExactCommit": True}
    assert sorted(row["score"] for row in data["rows"]) == [0, 1]


def test_a_run_the_sdk_recorded_before_the_upgrade_gets_its_marks_rolled_up(upgraded):
    client, headers = upgraded

    listed = client.get("/v1/experiments", headers=headers, params={"prompt_name": "math"})
    baseline = client.get(
        "/v1/experiments/baseline",
        params={"experiment_key": "math-eval", "tree_hash": "tree-9"},
        headers=headers,
    ).json()["data"]

    [summary] = listed.json()["data"]
    assert (summary["id"], summary["name"], summary["datasetPath"]) == (
        SDK_RUN,
        "math-eval",
        "math.dataset.jsonl",
    )
    assert (summary["experimentKey"], summary["treeHash"]) == ("math-eval", "tree-9")
    assert summary["createdAt"].startswith("2026-11-20T12:00:00")
    assert baseline == {
        "resolved": {"runId": SDK_RUN, "treeHash": "tree-9", "matchedExactCommit": True},
        "rows": [{"inputHash": "668e39980cde2c17", "scorer": "exact", "score": 1}],
    }


def test_the_removed_experiment_write_leaves_stored_custom_keys(upgraded, database_url):
    async def stored() -> list[str]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as db:
                query = sa.select(api_keys.c.permissions).where(api_keys.c.id == OLD_KEY)
                return list((await db.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == ["trace.read", "experiment.read"]


def test_a_run_marked_as_telemetry_metadata_before_the_upgrade_is_listed(upgraded):
    client, headers = upgraded

    listed = client.get(
        "/v1/experiments", headers=headers, params={"prompt_name": "legacy.prompt.mdx"}
    )
    detail = client.get(f"/v1/experiments/{ADAPTER_RUN}", headers=headers)

    [summary] = listed.json()["data"]
    assert (summary["id"], summary["name"], summary["datasetPath"]) == (
        ADAPTER_RUN,
        "legacy-eval",
        "legacy.dataset.jsonl",
    )
    assert (summary["commitSha"], summary["itemCount"]) == ("c0ffee", 1)
    assert detail.status_code == 200, detail.text
    [item] = detail.json()["data"]["items"]
    assert (item["traceId"], item["itemName"]) == (ADAPTER_TRACE, "0")
    assert (item["expectedOutput"], item["output"]) == ("12", "12")
