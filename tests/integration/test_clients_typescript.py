"""The current TypeScript clients (``@agentmark-ai/sdk`` 2.1.5, ``@agentmark-ai/prompt-core``
1.2.3, built from source in ``../shared/clients/agentmark-ts/``) work unchanged
against a served gateway: tracing, scores, every kind of template, datasets,
experiments and their regression gate. Each scenario is one Node process
(``tests/fixtures/ts/current_sdk.mjs``); what the clients sent is checked on the
gateway's side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live_gateway import FIXTURES, LiveGateway, live_gateway, run_node, shared_path

pytestmark = pytest.mark.slow

SCRIPT = FIXTURES / "ts" / "current_sdk.mjs"
PUBLISHED = {
    "haiku.prompt.mdx": "agentmark/haiku.prompt.mdx.json",
    "agents/triage.prompt.mdx": "agentmark/agents/triage.prompt.mdx.json",
    "media/poster.prompt.mdx": "agentmark/media/poster.prompt.mdx.json",
    "media/greeting.prompt.mdx": "agentmark/media/greeting.prompt.mdx.json",
    "datasets/arithmetic.jsonl": "agentmark/datasets/arithmetic.jsonl",
}
# What a CI job that gates on regressions needs: the SDK preset lacks experiment.read.
GATE_PERMISSIONS = ["trace.ingest", "score.write", "template.read", "experiment.read"]


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, template_database: str
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory, template_database) as live:
        yield live


@pytest.fixture(scope="module")
def app(gateway: LiveGateway) -> dict[str, Any]:
    """One app with its templates and dataset published, and the keys the tests use."""
    admin = gateway.admin
    app_id = admin.create_app("shop")
    full = admin.create_key(app_id, role="full-access")
    reader = {"Authorization": full["plaintext_key"], "X-Agentmark-App-Id": app_id}
    for path, fixture in PUBLISHED.items():
        gateway.publish(reader, path, FIXTURES / fixture)
    deleted = admin.create_key(app_id, role="sdk")
    gateway.delete_key(deleted)
    return {
        "reader": reader,
        "sdk": admin.create_key(app_id, role="sdk"),
        "gate": admin.create_key(app_id, permissions=GATE_PERMISSIONS),
        "read-only": admin.create_key(app_id, role="read-only"),
        "deleted": deleted,
    }


def ok(outcome: dict[str, Any]) -> Any:
    """What a client call returned; fails with the error it threw instead."""
    assert "ok" in outcome, outcome
    return outcome["ok"]


def drive(gateway: LiveGateway, key: dict[str, Any], scenario: str) -> Any:
    gateway.recorder.seen.clear()
    run = run_node(
        SCRIPT,
        scenario,
        env={
            "AGENTMARK_TS_CLIENTS": str(shared_path("clients", "agentmark-ts")),
            "AGENTMARK_BASE_URL": gateway.base,
            "AGENTMARK_APP_ID": key["app_id"],
            "AGENTMARK_API_KEY": key["plaintext_key"],
        },
    )
    return run.result


@pytest.fixture(scope="module")
def used_as_an_app(gateway: LiveGateway, app: dict[str, Any]) -> Any:
    return drive(gateway, app["sdk"], "app")


@pytest.fixture(scope="module")
def used_by_ci(gateway: LiveGateway, app: dict[str, Any]) -> Any:
    return drive(gateway, app["gate"], "experiments")


def test_a_trace_with_child_spans_user_and_session_is_stored(gateway, app, used_as_an_app):
    trace_id = used_as_an_app["traceId"]
    trace = gateway.client.get(f"/v1/traces/{trace_id}", headers=app["reader"]).json()["data"]
    assert (trace["name"], trace["span_count"]) == ("checkout", 3)
    assert (trace["user_id"], trace["session_id"]) == ("user-7", "session-3")
    assert trace["input"] == '{"cart":["tea"]}'
    assert trace["output"] == '"paid"'
    spans = {span["name"]: span for span in trace["spans"]}
    assert spans["checkout"]["parent_id"] is None
    assert spans["charge-card"]["parent_id"] == spans["checkout"]["id"]
    assert spans["fraud-check"]["parent_id"] == spans["charge-card"]["id"]
    sessions = gateway.client.get("/v1/sessions", headers=app["reader"]).json()["data"]
    assert [s["id"] for s in sessions] == ["session-3"]


def test_a_score_is_stored_and_its_record_returned(gateway, app, used_as_an_app):
    trace_id = used_as_an_app["traceId"]
    returned = ok(used_as_an_app["score"])
    stored = gateway.client.get(
        "/v1/scores", params={"resource_id": trace_id}, headers=app["reader"]
    ).json()["data"]
    assert [
        (s["id"], s["name"], s["score"], s["label"], s["reason"], s["source"]) for s in stored
    ] == [(returned["id"], "accuracy", 0.9, "good", "paid", "api")]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("text", "Write a haiku about autumn."),
        ("object", "Where is my parcel?"),
        ("image", "A travel poster of Lisbon at dusk."),
        ("speech", "Welcome to Lisbon."),
    ],
)
def test_the_api_loader_formats_each_kind_of_template(used_as_an_app, kind, expected):
    formatted = used_as_an_app["formatted"][kind]
    assert expected in str(ok(formatted))


def test_the_api_loader_streams_a_dataset(used_as_an_app):
    rows = ok(used_as_an_app["dataset"])
    lines = (FIXTURES / "agentmark" / "datasets" / "arithmetic.jsonl").read_text().splitlines()
    assert rows == [json.loads(line) for line in lines]


def test_the_sdk_preset_may_not_read_baselines(used_as_an_app):
    error = used_as_an_app["baseline"]["error"]
    assert (error["code"], error["required_permission"]) == ("forbidden", "experiment.read")


def test_the_regression_gate_fails_a_run_that_scored_worse_than_its_baseline(used_by_ci):
    base, regressed = used_by_ci["base"], used_by_ci["regressed"]
    assert regressed["resolved"] == {
        "runId": base["runId"],
        "treeHash": "tree-base",
        "matchedExactCommit": True,
    }
    assert regressed["baselineRowsMatched"] == 3
    assert regressed["regressionFailures"] == 3
    assert regressed["passed"] is False


def test_the_regression_gate_passes_a_run_that_kept_its_scores(used_by_ci):
    fixed = used_by_ci["fixed"]
    assert fixed["resolved"]["runId"] == used_by_ci["base"]["runId"]
    assert (fixed["baselineRowsMatched"], fixed["regressionFailures"]) == (3, 0)
    assert fixed["passed"] is True


def test_get_baseline_scores_reads_the_run_at_the_tree_hash_by_input_hash(used_by_ci):
    exact = ok(used_by_ci["exact"])
    assert exact["resolved"] == {
        "runId": used_by_ci["base"]["runId"],
        "treeHash": "tree-base",
        "matchedExactCommit": True,
    }
    assert exact["scores"] == {f"{digest}::exact": 1 for digest in used_by_ci["hashes"]}


def test_get_baseline_scores_falls_back_to_the_newest_run_of_the_key(used_by_ci):
    fallback = ok(used_by_ci["fallback"])
    assert fallback["resolved"] == {
        "runId": used_by_ci["fixed"]["runId"],
        "treeHash": "tree-fixed",
        "matchedExactCommit": False,
    }
    assert fallback["scores"] == {f"{digest}::exact": 1 for digest in used_by_ci["hashes"]}


def test_get_baseline_scores_of_a_key_that_never_ran_resolves_nothing(used_by_ci):
    assert ok(used_by_ci["none"]) == {"resolved": None, "scores": {}}


def test_runs_recorded_by_run_experiment_are_listed_as_experiments(gateway, app, used_by_ci):
    listed = gateway.client.get("/v1/experiments", headers=app["reader"]).json()["data"]
    runs = [used_by_ci[name]["runId"] for name in ("fixed", "regressed", "base")]
    assert {e["id"] for e in listed} == set(runs)
    detail = gateway.client.get(f"/v1/experiments/{runs[1]}", headers=app["reader"]).json()["data"]
    assert (detail["name"], detail["datasetPath"], detail["itemCount"]) == (
        "arithmetic",
        "datasets/arithmetic.jsonl",
        3,
    )
    assert detail["avgScore"] == 0
    items = sorted(detail["items"], key=lambda item: item["itemName"])
    assert [item["expectedOutput"] for item in items] == ['"12"', '"7"', '"42"']
    assert [[s["name"], s["score"]] for item in items for s in item["scores"]] == [["exact", 0]] * 3


@pytest.mark.parametrize(
    ("which", "status", "code"), [("read-only", 403, "forbidden"), ("deleted", 401, "unauthorized")]
)
def test_each_call_is_refused_with_a_key_that_may_not_make_it(gateway, app, which, status, code):
    outcome = drive(gateway, app[which], "refused")

    assert outcome["score"]["error"]["code"] == code
    assert outcome["template"]["error"]["code"] == code
    assert outcome["baseline"]["error"]["code"] == code
    assert "error" in outcome["dataset"]
    seen = gateway.recorder.statuses
    assert seen("POST", "/v1/traces") == [status]
    assert seen("POST", "/v1/scores") == [status]
    assert seen("GET", "/v1/templates") == [status, status]
    assert seen("GET", "/v1/experiments/baseline") == [status]
