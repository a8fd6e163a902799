"""The old TypeScript SDK from npm (``@agentmark/sdk`` 4.2.0 with ``@agentmark/prompt-core``
0.1.0) works unchanged against a served gateway: its flat span rows
(``POST /v1/export-traces``) are stored, its score (``POST /v1/score``) is stored,
its loader reads templates and datasets. The packages are installed from npm once
per run into a temporary folder; outside CI the tests skip, saying why, when npm or
the registry is not there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_gateway import FIXTURES, LiveGateway, NodeRun, live_gateway, run_node, unavailable

pytestmark = pytest.mark.slow

SCRIPT = FIXTURES / "ts" / "old_sdk.mjs"
PACKAGES = ["@agentmark/sdk@4.2.0", "@agentmark/prompt-core@0.1.0"]


@pytest.fixture(scope="session")
def old_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose node_modules hold the old SDK and its dependencies, installed
    once per run: the folder is in the run's temporary folder, which test workers
    share, and a lock makes the other workers wait for the first one's install."""
    npm = shutil.which("npm")
    if npm is None:
        unavailable("no npm on PATH (it installs the old TypeScript SDK)")
    assert npm is not None
    run_folder = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has its own folder in the run's
        run_folder = run_folder.parent
    folder = run_folder / "old-typescript-sdk"
    folder.mkdir(exist_ok=True)
    with (folder / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "installed").exists():
            (folder / "package.json").write_text('{"private": true}')
            install = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if install.returncode != 0:
                unavailable(f"could not install {' '.join(PACKAGES)}: {install.stderr[-500:]}")
            (folder / "installed").touch()
    return folder


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, template_database: str
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory, template_database) as live:
        yield live


@pytest.fixture(scope="module")
def app(gateway: LiveGateway) -> dict[str, Any]:
    admin = gateway.admin
    app_id = admin.create_app("legacy-shop")
    full = admin.create_key(app_id, role="full-access")
    reader = {"Authorization": full["plaintext_key"], "X-Agentmark-App-Id": app_id}
    gateway.publish(reader, "haiku.prompt.mdx", FIXTURES / "agentmark" / "haiku.prompt.mdx.json")
    dataset = FIXTURES / "agentmark" / "datasets" / "arithmetic.jsonl"
    gateway.publish(reader, "datasets/arithmetic.jsonl", dataset)
    deleted = admin.create_key(app_id, role="sdk")
    gateway.delete_key(deleted)
    return {
        "reader": reader,
        "sdk": admin.create_key(app_id, role="sdk"),
        "read-only": admin.create_key(app_id, role="read-only"),
        "deleted": deleted,
    }


def drive(gateway: LiveGateway, old_sdk: Path, key: dict[str, Any], scenario: str) -> NodeRun:
    gateway.recorder.seen.clear()
    return run_node(
        SCRIPT,
        scenario,
        env={
            "AGENTMARK_OLD_SDK": str(old_sdk),
            "AGENTMARK_BASE_URL": gateway.base,
            "AGENTMARK_APP_ID": key["app_id"],
            "AGENTMARK_API_KEY": key["plaintext_key"],
        },
    )


@pytest.fixture(scope="module")
def used_as_an_app(gateway: LiveGateway, app: dict[str, Any], old_sdk: Path) -> Any:
    return drive(gateway, old_sdk, app["sdk"], "app")


def test_the_process_ends_normally_after_every_export_was_accepted(gateway, used_as_an_app):
    # A refused export ends the old SDK's host process (an unhandled rejection).
    assert used_as_an_app.returncode == 0, used_as_an_app.stderr
    assert gateway.recorder.statuses("POST", "/v1/export-traces") == [200, 200]


def test_flat_span_rows_are_stored_as_a_trace(gateway, app, used_as_an_app):
    trace_id = used_as_an_app.result["traceId"]
    trace = gateway.client.get(f"/v1/traces/{trace_id}", headers=app["reader"]).json()
    assert "data" in trace, trace
    spans = {span["name"]: span for span in trace["data"]["spans"]}
    assert set(spans) == {"legacy-checkout", "legacy-charge"}
    assert spans["legacy-checkout"]["parent_id"] is None
    assert spans["legacy-charge"]["parent_id"] == spans["legacy-checkout"]["id"]
    assert spans["legacy-checkout"]["status"] == "OK"
    detail = gateway.client.get(
        f"/v1/traces/{trace_id}/spans/{spans['legacy-checkout']['id']}", headers=app["reader"]
    ).json()["data"]
    assert detail["attributes"]["ai.telemetry.metadata.attempt"] == 2
    assert detail["otel_kind"] == "INTERNAL"
    assert detail["duration_ms"] >= 0


def test_the_score_is_stored(gateway, app, used_as_an_app):
    result = used_as_an_app.result
    assert "id" in result["score"]["ok"], result["score"]
    stored = gateway.client.get(
        "/v1/scores", params={"resource_id": result["traceId"]}, headers=app["reader"]
    ).json()["data"]
    assert [(s["name"], s["score"], s["label"], s["reason"]) for s in stored] == [
        ("helpful", 1, "yes", "r")
    ]


def test_the_file_loader_reads_a_template_and_a_dataset(used_as_an_app):
    result = used_as_an_app.result
    published = json.loads((FIXTURES / "agentmark" / "haiku.prompt.mdx.json").read_text())
    assert result["template"] == {"ok": published}
    lines = (FIXTURES / "agentmark" / "datasets" / "arithmetic.jsonl").read_text().splitlines()
    assert result["dataset"] == {"ok": [json.loads(line) for line in lines]}


@pytest.mark.parametrize(
    ("which", "status", "code"), [("read-only", 403, "forbidden"), ("deleted", 401, "unauthorized")]
)
def test_each_call_is_refused_with_a_key_that_may_not_make_it(
    gateway, app, old_sdk, which, status, code
):
    run = drive(gateway, old_sdk, app[which], "refused")

    outcome = json.loads(run.stdout.splitlines()[0])
    assert outcome["score"]["error"]["code"] == code
    assert outcome["template"]["error"]["code"] == code
    assert "error" in outcome["dataset"]
    seen = gateway.recorder.statuses
    assert seen("POST", "/v1/score") == [status]
    assert seen("GET", "/v1/templates") == [status, status]
    # The old exporter rethrows a refused export where nothing catches it: Node ends
    # the process with code 1 at the first refusal, as against AgentMark's own service.
    assert set(seen("POST", "/v1/export-traces")) == {status}, gateway.recorder.seen
    assert run.returncode == 1
    assert f'"code":"{code}"' in run.stderr, run.stderr
