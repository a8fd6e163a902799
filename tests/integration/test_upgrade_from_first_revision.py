"""A database made by the first release upgrades to head with nothing lost.

It is migrated to the first revision, filled through that revision's schema in
plain SQL (keys with digests made as ``keygen`` makes them, with a known pepper),
upgraded to head, and served: every live key still verifies and every row reads
back the same through the API. Each new migration adds its rows to ``fill``
when it changes what is stored (the rule since migration 20261206_0007).
"""

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

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.app import create_app
from agentmark_gateway.auth.passwords import hash_password
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine
from agentmark_gateway.settings import Settings
from tests.conftest import BACKEND, PEPPER, _pg_url, pg_database, sign_in

FIRST = "20261127_0001"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)
STORED = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
START_NS = int(STORED.timestamp()) * 1_000_000_000
APP = "app_firstrelease"
EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"
TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT, CHILD = "00f067aa0ba902b7", "b7ad6b7169203331"
SCORE = "3d1b6c52-5a8f-4c1e-9d7a-1f2e3d4c5b6a"
TEMPLATE = "prompts/greet.prompt.mdx"
AST = {"type": "root", "children": [{"type": "text", "value": "Hello {props.name}"}]}
DATASET_ROWS = [
    {"input": {"name": "Ada"}, "expected_output": "Hello Ada"},
    {"input": {"name": "Linus"}, "expected_output": "Hello Linus", "metadata": {"n": 2}},
]
LIVE_ROLES = ("sdk", "read-only", "full-access", "custom")
CUSTOM = ["template.read", "trace.read", "score.read", "dataset.read"]


def table(name: str, *columns: str, **typed: Any) -> sa.TableClause:
    return sa.table(
        name, *(sa.column(c) for c in columns), *(sa.column(c, t) for c, t in typed.items())
    )


# The first revision's tables, as far as these rows need them.
apps = table("apps", "id", "name", created_at=WHEN, updated_at=WHEN)
users = table("users", "id", "email", "role", "password_hash", created_at=WHEN, updated_at=WHEN)
api_keys = table(
    "api_keys",
    *("id", "app_id", "name", "role", "digest", "display_prefix", "created_by"),
    permissions=JSON,
    extra=JSON,
    created_at=WHEN,
    updated_at=WHEN,
    expires_at=WHEN,
    deleted_at=WHEN,
)
spans = table(
    "spans",
    *("app_id", "trace_id", "span_id", "parent_span_id", "name", "kind"),
    *("start_time_ns", "end_time_ns", "duration_ms", "status_code", "scope_name"),
    *("trace_name", "session_id", "user_id", "span_type", "model", "prompt_name"),
    *("input_tokens", "output_tokens", "cost", "input", "output"),
    attributes=JSON,
    resource_attributes=JSON,
    events=JSON,
    links=JSON,
    tags=JSON,
    received_at=WHEN,
)
traces = table(
    "traces",
    *("app_id", "trace_id", "trace_name", "root_name", "first_name"),
    *("start_time_ns", "end_time_ns", "span_count", "status_code"),
    *("input_tokens", "output_tokens", "cost", "model", "user_id", "session_id"),
    updated_at=WHEN,
)
trace_tags = table("trace_tags", "app_id", "trace_id", "tag")
scores = table(
    "scores",
    *("id", "app_id", "resource_id", "name", "score", "label", "reason", "type", "source"),
    metadata=JSON,
    created_at=WHEN,
)
templates = table(
    "templates", "id", "app_id", "path", "prompt_name", content=JSON, created_at=WHEN,
    updated_at=WHEN,
)  # fmt: skip
datasets = table("datasets", "id", "app_id", "name", created_at=WHEN, updated_at=WHEN)
dataset_rows = table("dataset_rows", "dataset_id", "line_number", data=JSON, created_at=WHEN)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if BACKEND == "postgresql":
        with pg_database("agw_first_revision") as name:
            yield _pg_url(name)
    else:
        yield f"sqlite:///{tmp_path / 'gateway.db'}"


def span_row(span_id: str, parent: str | None, **fields: Any) -> dict[str, Any]:
    row = dict.fromkeys(spans.c.keys())
    row.update(
        app_id=APP,
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        kind=1,
        start_time_ns=START_NS,
        end_time_ns=START_NS + 1_500_000_000,
        duration_ms=1500.0,
        status_code=1,
        scope_name="agentmark",
        session_id="session-7",
        user_id="user-42",
        input_tokens=0,
        output_tokens=0,
        attributes={},
        resource_attributes={"service.name": "checkout"},
        events=[],
        links=[],
        tags=["release-1"],
        received_at=STORED,
    )
    row.update(fields)
    return row


async def fill(url: str) -> dict[str, str]:
    """The first release's rows; returns each live key's value by role."""
    values = {role: keygen.generate() for role in (*LIVE_ROLES, "deleted", "expired")}
    password_hash = await hash_password(PASSWORD)
    engine = make_engine(url)
    try:
        async with engine.begin() as db:
            at = {"created_at": STORED, "updated_at": STORED}
            await db.execute(apps.insert().values(id=APP, name="first release", **at))
            await db.execute(
                users.insert().values(
                    id="usr_first", email=EMAIL, role="owner", password_hash=password_hash, **at
                )
            )
            for role, value in values.items():
                await db.execute(
                    api_keys.insert().values(
                        id=f"key_{role.replace('-', '')}",
                        app_id=APP,
                        name=f"{role} key",
                        role=role if role in LIVE_ROLES else "full-access",
                        permissions=CUSTOM if role == "custom" else [],
                        extra=None,
                        digest=keygen.digest(value, PEPPER.encode()),
                        display_prefix=keygen.display_prefix(value),
                        created_by="cli",
                        expires_at=STORED if role == "expired" else None,
                        deleted_at=STORED if role == "deleted" else None,
                        **at,
                    )
                )
            await db.execute(
                spans.insert(),
                [
                    span_row(
                        ROOT,
                        None,
                        name="checkout",
                        trace_name="checkout flow",
                        span_type="agent",
                        input='{"cart": 3}',
                        output="paid",
                    ),
                    span_row(
                        CHILD,
                        ROOT,
                        name="chat",
                        span_type="llm",
                        model="gpt-4o",
                        start_time_ns=START_NS + 100_000_000,
                        end_time_ns=START_NS + 900_000_000,
                        duration_ms=800.0,
                        input_tokens=30,
                        output_tokens=12,
                        cost=0.25,
                        prompt_name="greet",
                        attributes={"gen_ai.request.model": "gpt-4o", "temperature": 0.2},
                    ),
                ],
            )
            await db.execute(
                traces.insert().values(
                    app_id=APP,
                    trace_id=TRACE,
                    trace_name="checkout flow",
                    root_name="checkout",
                    first_name="checkout",
                    start_time_ns=START_NS,
                    end_time_ns=START_NS + 1_500_000_000,
                    span_count=2,
                    status_code=1,
                    input_tokens=30,
                    output_tokens=12,
                    cost=0.25,
                    model="gpt-4o",
                    user_id="user-42",
                    session_id="session-7",
                    updated_at=STORED,
                )
            )
            await db.execute(
                trace_tags.insert().values(app_id=APP, trace_id=TRACE, tag="release-1")
            )
            await db.execute(
                scores.insert().values(
                    id=SCORE,
                    app_id=APP,
                    resource_id=TRACE,
                    name="accuracy",
                    score=0.75,
                    label="good",
                    reason="close enough",
                    type="numeric",
                    source="eval",
                    metadata={"judge": "human"},
                    created_at=STORED,
                )
            )
            await db.execute(
                templates.insert().values(
                    id="tpl_greet",
                    app_id=APP,
                    path=TEMPLATE,
                    prompt_name="greet",
                    content=AST,
                    **at,
                )
            )
            await db.execute(
                datasets.insert().values(id="ds_people", app_id=APP, name="evals/people", **at)
            )
            await db.execute(
                dataset_rows.insert(),
                [
                    {"dataset_id": "ds_people", "line_number": n, "data": row, "created_at": STORED}
                    for n, row in enumerate(DATASET_ROWS, start=1)
                ],
            )
    finally:
        await engine.dispose()
    return values


def test_a_first_release_database_upgrades_to_head_with_every_key_and_row_intact(
    database_url, tmp_path
):
    command.upgrade(migrate.alembic_config(database_url), FIRST)
    values = asyncio.run(fill(database_url))
    migrate.upgrade(database_url)

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER)
    with TestClient(create_app(settings)) as client:

        def as_key(role: str) -> dict[str, str]:
            return {"Authorization": values[role], "X-Agentmark-App-Id": APP}

        # Each live key verifies: a read its role allows answers as before.
        template = ("/v1/templates", {"path": TEMPLATE})
        probes: dict[str, tuple[str, dict[str, str]]] = {
            "sdk": template,
            "read-only": (f"/v1/scores/{SCORE}", {}),
            "full-access": template,
            "custom": template,
        }
        for role, (path, params) in probes.items():
            answer = client.get(path, params=params, headers=as_key(role))
            assert answer.status_code == 200, (role, answer.text)
        sdk = client.get("/v1/templates", params={"path": TEMPLATE}, headers=as_key("sdk"))
        assert sdk.json()["data"] == AST
        for role in ("deleted", "expired"):
            refused = client.get("/v1/templates", params={"path": TEMPLATE}, headers=as_key(role))
            assert refused.status_code == 401, role

        key = as_key("full-access")
        trace = client.get(f"/v1/traces/{TRACE}", headers=key).json()["data"]
        assert {k: trace[k] for k in ("name", "status", "span_count", "cost", "model")} == {
            "name": "checkout flow",
            "status": "OK",
            "span_count": 2,
            "cost": 0.25,
            "model": "gpt-4o",
        }
        assert (trace["input_tokens"], trace["output_tokens"], trace["latency_ms"]) == (
            30,
            12,
            1500,
        )
        assert (trace["user_id"], trace["session_id"], trace["tags"]) == (
            "user-42",
            "session-7",
            ["release-1"],
        )
        assert trace["start"] == STORED.isoformat().replace("+00:00", "Z")
        assert [s["id"] for s in trace["spans"]] == [ROOT, CHILD]
        assert (trace["input"], trace["output"]) == ('{"cart": 3}', "paid")
        tagged = client.get("/v1/traces", params={"tag": "release-1"}, headers=key).json()
        assert [t["id"] for t in tagged["data"]] == [TRACE]

        child = client.get(f"/v1/traces/{TRACE}/spans/{CHILD}", headers=key).json()["data"]
        assert child["attributes"] == {"gen_ai.request.model": "gpt-4o", "temperature": 0.2}
        assert child["resource_attributes"] == {"service.name": "checkout"}
        assert (child["parent_id"], child["model"], child["prompt_name"]) == (
            ROOT,
            "gpt-4o",
            "greet",
        )
        assert (child["input_tokens"], child["output_tokens"], child["cost"]) == (30, 12, 0.25)

        score = client.get(f"/v1/scores/{SCORE}", headers=key).json()["data"]
        assert {k: score[k] for k in ("resource_id", "name", "score", "label", "reason")} == {
            "resource_id": TRACE,
            "name": "accuracy",
            "score": 0.75,
            "label": "good",
            "reason": "close enough",
        }
        assert (score["source"], score["metadata"]) == ("eval", {"judge": "human"})

        rows = client.get("/v1/datasets/evals/people/rows", headers=key).json()["data"]
        assert [r["line_number"] for r in rows] == [1, 2]
        assert [{k: r[k] for k in DATASET_ROWS[i]} for i, r in enumerate(rows)] == DATASET_ROWS

        owner = {"Authorization": f"Bearer {sign_in(client, EMAIL, PASSWORD)}"}
        app = client.get(f"/v1/apps/{APP}", headers=owner).json()["data"]
        assert (app["name"], app["retention_days"]) == ("first release", None)
        listed = client.get("/v1/api-keys", headers={**owner, "X-Agentmark-App-Id": APP}).json()
        prefixes = {k["name"]: (k["key_prefix"], k["role"]) for k in listed["data"]}
        assert prefixes == {
            f"{role} key": (keygen.display_prefix(values[role]), role) for role in LIVE_ROLES
        } | {"expired key": (keygen.display_prefix(values["expired"]), "full-access")}
        custom = next(k for k in listed["data"] if k["role"] == "custom")
        assert sorted(custom["permissions"]) == sorted(CUSTOM)
