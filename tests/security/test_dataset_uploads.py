"""Dataset uploads: streamed, capped in rows, bounded in memory, written in short batches.

A 20 KB gzip inflating to 800,000 lines once cost over a gigabyte a request and
held SQLite's write lock for the whole insert. Now the body is parsed as it
arrives, the row past AGENTMARK_MAX_DATASET_ROWS ends it with a 413, and rows are
written a batch per transaction under a hidden dataset that one short
transaction then puts in place.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agentmark_gateway.app import create_app
from agentmark_gateway.datasets.models import HIDDEN_PREFIX, Dataset, DatasetRow
from agentmark_gateway.datasets.upload import ABANDONED
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER, Admin, add_user
from tests.fixtures.otlp import payloads

BOMB_LINES = 800_000
NDJSON = "application/x-ndjson"


def _gzip_rows(rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> bytes:
    return gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in rows))


def _put(http: Any, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return http.put(
        "/v1/templates",
        params={"path": path},
        content=body,
        headers={**headers, "Content-Encoding": "gzip", "Content-Type": NDJSON},
    )


def _other_app_key(live) -> dict[str, str]:
    with live.http() as http:
        name = f"bystander-{uuid.uuid4().hex[:8]}"
        app = http.post("/v1/apps", json={"name": name}, headers=live.session_headers)
        assert app.status_code == 201, app.text
        app_id = app.json()["data"]["id"]
        key = http.post(
            "/v1/api-keys",
            json={"name": "ingest", "role": "sdk"},
            headers={**live.session_headers, "X-Agentmark-App-Id": app_id},
        )
        assert key.status_code == 201, key.text
        return {"Authorization": key.json()["data"]["plaintext_key"], "X-Agentmark-App-Id": app_id}


class Bystander(threading.Thread):
    """Another client: /health and another app's ingest, over and over, timed."""

    def __init__(self, live, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.live, self.headers = live, headers
        self.stop = threading.Event()
        self.health: list[tuple[float, int]] = []
        self.ingest: list[tuple[float, int]] = []

    def run(self) -> None:
        with self.live.http() as http:
            while not self.stop.is_set():
                started = time.monotonic()
                status = http.get("/health").status_code
                self.health.append((time.monotonic() - started, status))
                spans = [payloads.span(payloads.trace_id())]
                started = time.monotonic()
                response = http.post(
                    "/v1/traces", json=payloads.request(spans), headers=self.headers
                )
                self.ingest.append((time.monotonic() - started, response.status_code))


def _peak_rss_reset() -> None:
    """Starts a new peak for this process's resident memory (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def test_a_gzip_of_800000_lines_is_refused_quickly_in_bounded_memory_while_others_go_on(live):
    bomb = gzip.compress(b'{"input":{}}\n' * BOMB_LINES, 9)
    assert len(bomb) < 25_000
    bystander = Bystander(live, _other_app_key(live))
    bystander.start()
    try:
        with live.http() as http:
            time.sleep(0.2)  # the bystander is under way before the upload starts
            # The live gateway serves from this process: its memory is ours.
            _peak_rss_reset()
            before = _peak_rss()
            started = time.monotonic()
            response = _put(http, "bomb.jsonl", bomb, live.data_headers)
            elapsed = time.monotonic() - started
            growth = _peak_rss() - before
            time.sleep(0.2)  # and goes on after it
    finally:
        bystander.stop.set()
        bystander.join(30)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and "100000 rows" in error["message"]
    # It once took 1.15 GB and stalled /health for 8.8 s; generous bounds for a loaded machine.
    assert growth < 150 * 1024 * 1024, f"resident memory grew {growth / 1e6:.0f} MB"
    assert elapsed < 15
    assert bystander.health and bystander.ingest
    assert all(status == 200 for _, status in bystander.health + bystander.ingest)
    assert max(latency for latency, _ in bystander.health) < 1.0
    assert max(latency for latency, _ in bystander.ingest) < 2.0
    with live.http() as http:
        listed = http.get("/v1/datasets", params={"name": "bomb"}, headers=live.data_headers)
        assert listed.json()["data"] == []


@pytest.mark.slow
def test_a_50000_row_upload_works_and_a_replacement_is_all_or_nothing_for_readers(live):
    def version(v: int, rows: int) -> bytes:
        return _gzip_rows({"input": {"n": n}, "metadata": {"v": v}} for n in range(rows))

    old, new = (5_000, {1}), (50_000, {2})
    reads: list[tuple[int, set[int]]] = []

    def read_all() -> tuple[int, set[int]]:
        with live.http() as http:
            response = http.get(
                "/v1/templates",
                params={"path": "big.jsonl"},
                headers={**live.data_headers, "Accept": NDJSON},
            )
        assert response.status_code == 200, response.text
        rows = [json.loads(line) for line in response.text.splitlines()]
        return len(rows), {row["metadata"]["v"] for row in rows}

    def keep_reading() -> None:
        # Until it sees the new rows: the switch happens after every batch is written.
        while not reads or reads[-1] != new:
            reads.append(read_all())

    body = version(2, new[0])
    bystander = Bystander(live, _other_app_key(live))
    with live.http() as http:
        created = _put(http, "big.jsonl", version(1, old[0]), live.data_headers)
        assert created.status_code == 201, created.text
        assert read_all() == old
        reader = threading.Thread(target=keep_reading, daemon=True)
        reader.start()
        bystander.start()
        started = time.monotonic()
        try:
            replaced = _put(http, "big.jsonl", body, live.data_headers)
            took = time.monotonic() - started
        finally:
            bystander.stop.set()
            bystander.join(30)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["data"]["row_count"] == 50_000
        reader.join(30)
        listed = http.get("/v1/datasets", params={"name": "big"}, headers=live.data_headers)
    # Another app's ingest went on all along: parsing is off the event loop and the rows
    # went in short transactions, so no ingest waited for a large part of the upload.
    assert all(status == 200 for _, status in bystander.health + bystander.ingest)
    assert len(bystander.ingest) >= 3
    assert max(latency for latency, _ in bystander.ingest) < took / 3
    assert reads and all(read in (old, new) for read in reads), reads
    assert reads[-1] == new
    assert [(d["name"], d["row_count"]) for d in listed.json()["data"]] == [("big", 50_000)]


@pytest.fixture
def capped(database_url, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER, max_dataset_rows=3
    )
    with TestClient(create_app(settings)) as client:
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        key = admin.create_key(admin.create_app(), role="full-access")
        yield client, {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]}


def _stored(client: TestClient) -> tuple[int, int]:
    """Datasets and rows in the database, hidden ones included."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def count() -> tuple[int, int]:
        async with gateway.sessionmaker() as session:
            datasets = await session.scalar(select(func.count()).select_from(Dataset))
            rows = await session.scalar(select(func.count()).select_from(DatasetRow))
            return datasets or 0, rows or 0

    return client.portal.call(count)  # type: ignore[union-attr]


def _rows(n: int, tag: str = "a") -> bytes:
    return _gzip_rows([{"input": {"tag": tag, "n": i}} for i in range(n)])


def test_every_dataset_write_is_capped_and_a_refused_one_writes_nothing(capped):
    client, headers = capped
    refused = _put(client, "d.jsonl", _rows(4), headers)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["max_rows"] == 3
    assert client.get("/v1/datasets/d/rows", headers=headers).status_code == 404
    assert _stored(client) == (0, 0)

    assert _put(client, "d.jsonl", _rows(3), headers).status_code == 201
    assert _put(client, "d.jsonl", _rows(4, "b"), headers).status_code == 413
    assert _put(client, "d.jsonl", _rows(2, "c"), headers).status_code == 200
    assert _stored(client) == (1, 2)  # the replaced rows are gone, nothing hidden is left
    rows = client.get("/v1/datasets/d/rows", headers=headers).json()["data"]
    assert [r["input"]["tag"] for r in rows] == ["c", "c"]

    appended = client.post("/v1/datasets/d/rows", json={"input": {"n": 3}}, headers=headers)
    assert appended.status_code == 201, appended.text
    full = client.post("/v1/datasets/d/rows", json={"input": {"n": 4}}, headers=headers)
    assert full.status_code == 413, full.text
    assert full.json()["error"]["code"] == "payload_too_large"

    trace = payloads.trace_id()
    span = payloads.span(trace, attrs={"agentmark.request.input": '{"q": 1}'})
    payloads.post(client, headers, [span])
    for route, body in (
        ("from-traces", {"trace_ids": [trace]}),
        ("from-spans", {"span_ids": [span["spanId"]]}),
    ):
        imported = client.post(f"/v1/datasets/d/rows/{route}", json=body, headers=headers)
        assert imported.status_code == 413, imported.text
    assert _stored(client) == (1, 3)


def test_what_a_dead_upload_left_is_swept_by_the_next_upload(capped):
    client, headers = capped
    app_id = headers["X-Agentmark-App-Id"]
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def leave_behind(age: timedelta) -> None:
        # As a process killed between two batches leaves it: hidden, with some rows.
        async with gateway.sessionmaker() as session:
            dataset = Dataset(
                app_id=app_id,
                name=f"{HIDDEN_PREFIX}upload/{uuid.uuid4().hex}",
                updated_at=utcnow() - age,
            )
            session.add(dataset)
            await session.flush()
            session.add_all(
                DatasetRow(dataset_id=dataset.id, line_number=n, data={"input": {}}) for n in (1, 2)
            )
            await session.commit()

    portal = client.portal
    assert portal is not None
    portal.call(leave_behind, ABANDONED + timedelta(minutes=1))
    portal.call(leave_behind, timedelta(0))  # an upload still under way
    assert _stored(client) == (2, 4)
    assert client.get("/v1/datasets", headers=headers).json()["data"] == []
    assert _put(client, "d.jsonl", _rows(1), headers).status_code == 201
    assert _stored(client) == (2, 3)  # the dead one is gone, the live upload's is kept
