"""Two real uvicorn workers: /metrics counts both, and every log line is JSON with the
request's id (uvicorn's access log included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BACKEND, PEPPER
from tests.servers import free_port

pytestmark = [
    pytest.mark.slow,
    # Nothing here depends on the database: one leg is enough.
    pytest.mark.skipif(BACKEND == "postgresql", reason="runs in the SQLite leg"),
]

TOKEN = "metrics-token-for-tests-0123"
LINK_TOKEN = "q7Wm2xZ9vB4nR8tY1uI5oP3aS6dF0gH2jK4lL8cV"
KEY = "sk_agentmark_" + "A1b2C3d4" * 4 + "Zz9Yy8"

# What the server command does before it starts workers, and the log configuration
# it hands uvicorn (observability.metrics.prepare_workers, observability.logs.dict_config).
LAUNCHER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from agentmark_gateway.observability import logs, metrics
    from agentmark_gateway.settings import Settings

    settings = Settings()
    metrics.prepare_workers(settings, 2)
    uvicorn.run(
        "agentmark_gateway.cli.serve:factory",
        factory=True,
        host="127.0.0.1",
        port=settings.port,
        workers=2,
        log_config=logs.dict_config(settings),
        log_level=settings.log_level,
    )
    """
)


def _count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "agentmark_http_request_duration_seconds_count"
                and sample.labels["route"] == "/health"
            ):
                total += sample.value
    return total


def _health_counts(shared: Path) -> list[int]:
    """Per worker file: 1 when it holds a /health request, else 0."""
    found = []
    for path in shared.glob("histogram_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        found.append(
            int(
                any(
                    '"/health"' in key and "_count" not in key and value
                    for key, value, *_ in values
                )
            )
        )
    return found


def test_two_workers_are_counted_together_and_log_json_lines(database_url, tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "AGENTMARK_DATABASE_URL": database_url,
        "AGENTMARK_DATA_DIR": str(tmp_path / "data"),
        "AGENTMARK_KEY_PEPPER": PEPPER,
        "AGENTMARK_PORT": str(port),
        "AGENTMARK_METRICS_TOKEN": TOKEN,
        "AGENTMARK_LOG_FORMAT": "json",
        "AGENTMARK_LOG_LEVEL": "info",
    }
    # A folder of our own: the workers' files are looked at after the run.
    shared = tmp_path / "metrics"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"{base}/health", headers={"X-Request-Id": "probe"}, timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        sent = 0

        def health(index: int) -> str:
            answer = httpx.get(f"{base}/health", headers={"X-Request-Id": f"e2e-{index}"})
            return answer.headers["x-request-id"]

        # New connections, several at once: the kernel hands them to both workers,
        # though on a busy machine one may take a whole round; send more until both
        # have answered some (each keeps its own file).
        for _round in range(10):
            batch = range(sent, sent + 30)
            with ThreadPoolExecutor(6) as pool:
                echoed = list(pool.map(health, batch))
            assert echoed == [f"e2e-{index}" for index in batch]
            sent += len(batch)
            time.sleep(1.5)  # every worker has flushed since (each second)
            if sorted(_health_counts(shared)) == [1, 1]:
                break
        assert sorted(_health_counts(shared)) == [1, 1]
        time.sleep(1.5)
        scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200
        # Every request, whichever worker answered it (the probe that found it up too).
        assert _count(scraped.text) == sent + 1
        # Paths the access log prints whole: a link token, a key put in the query.
        httpx.get(f"{base}/invite/{LINK_TOKEN}")
        httpx.get(f"{base}/v1/templates?path=a&k={KEY}", headers={"Authorization": KEY})
    finally:
        server.terminate()
        server.wait(timeout=30)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    ids = {e.get("request_id") for e in access}
    assert {f"e2e-{index}" for index in range(sent)} <= ids
    text = log.read_text()
    assert LINK_TOKEN not in text and KEY[len("sk_agentmark_") :] not in text
    assert "/invite/[redacted]" in text and "k=sk_agentmark_[redacted]" in text
    # The master's own lines are JSON too.
    assert any(e["message"].startswith("Started parent process") for e in entries)
