"""Batches an exporter would send, and what the database holds of them.

Every span of a batch carries the batch's marker (``resilience.batch``), so a
test can tell, per batch, whether all of it, none of it, or (the bug these
tests look for) part of it was stored.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.fixtures.otlp import payloads

MARKER = "resilience.batch"
SPANS_PER_BATCH = 100
TEMPLATE_PATH = "agents/support.prompt.mdx"
TEMPLATE_BODY = Path(__file__).parents[1] / "fixtures" / "agentmark" / "haiku.prompt.mdx.json"


def publish_template(base: str, headers: dict[str, str]) -> None:
    """Publishes the template SDK clients read (``headers``: a key with template.write)."""
    response = httpx.put(
        f"{base}/v1/templates",
        params={"path": TEMPLATE_PATH},
        content=TEMPLATE_BODY.read_bytes(),
        headers=headers,
    )
    assert response.status_code == 201, response.text


def batch(marker: str, *, traces: int = 10) -> bytes:
    """``SPANS_PER_BATCH`` spans in ``traces`` traces (a root and its children each), as JSON."""
    per_trace = SPANS_PER_BATCH // traces
    spans: list[dict[str, Any]] = []
    now = time.time_ns()
    for number in range(traces):
        trace = payloads.trace_id()
        root = payloads.span_id()
        spans.append(
            payloads.span(
                trace,
                root,
                name="agent",
                start_ns=now,
                attrs={MARKER: marker, "agentmark.trace_name": "load", "agentmark.user_id": "u-1"},
            )
        )
        for child in range(per_trace - 1):
            spans.append(
                payloads.span(
                    trace,
                    name="chat",
                    parent=root,
                    start_ns=now + child * payloads.MS,
                    attrs={
                        MARKER: marker,
                        "agentmark.span.kind": "llm",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 100 + number,
                        "gen_ai.usage.output_tokens": 20,
                    },
                )
            )
    assert len(spans) == SPANS_PER_BATCH
    return json.dumps(payloads.request(spans)).encode()


def new_marker() -> str:
    return uuid.uuid4().hex


def stored_per_batch_postgres(database_url: str, app_id: str) -> Counter[str]:
    """Spans stored per batch marker, read straight from PostgreSQL."""

    async def read() -> Counter[str]:
        conn = await asyncpg.connect(database_url.replace("postgresql://", "postgres://", 1))
        try:
            rows = await conn.fetch(
                "SELECT attributes->>$1 AS marker, count(*) AS n FROM spans "
                "WHERE app_id = $2 GROUP BY 1",
                MARKER,
                app_id,
            )
        finally:
            await conn.close()
        return Counter({row["marker"]: row["n"] for row in rows})

    return asyncio.run(read())


def stored_per_batch_sqlite(path: str, app_id: str) -> Counter[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT json_extract(attributes, '$.\"' || ? || '\"'), count(*) FROM spans "
            "WHERE app_id = ? GROUP BY 1",
            (MARKER, app_id),
        ).fetchall()
    conn.close()
    return Counter({marker: n for marker, n in rows})


@dataclass
class Outcome:
    """What one request got: a status (None when no answer came) or a transport error."""

    started: float
    ended: float
    status: int | None
    error: str | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    marker: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def half_written(stored: Counter[str]) -> dict[str, int]:
    """Batches with some but not all of their spans stored."""
    return {marker: n for marker, n in stored.items() if n != SPANS_PER_BATCH}
