"""GET /v1/experiments/baseline: the regression gate's contract (CLIENTS.md 2.5, 5.4)."""

from __future__ import annotations

import pytest

from tests.fixtures.otlp.experiment_runs import Row, post_run, sdk_run

FIVE_PLUS_SEVEN = {"userMessage": "What is 5 + 7?"}
# hashRowInput of FIVE_PLUS_SEVEN, computed with the real prompt-core (CLIENTS.md 5.3).
FIVE_PLUS_SEVEN_HASH = "668e39980cde2c17"


@pytest.fixture
def app_id(admin):
    return admin.create_app()


@pytest.fixture
def headers(admin, app_id, key_headers):
    return key_headers(admin.create_key(app_id, role="full-access"))


def rows(score: float) -> list[Row]:
    return [
        Row(input=FIVE_PLUS_SEVEN, expected="12", scores={"exact": score, "length": 1}),
        Row(input={"b": 2, "a": 1}, expected="x", scores={"exact": score}),
    ]


def baseline(client, headers, **params):
    response = client.get("/v1/experiments/baseline", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_the_run_at_the_asked_tree_hash_is_the_baseline_with_hashed_rows(client, headers):
    first = post_run(client, headers, sdk_run(rows(1), tree_hash="base-tree"))
    post_run(client, headers, sdk_run(rows(0), tree_hash="new-tree"))

    data = baseline(client, headers, experiment_key="math-eval", tree_hash="base-tree")

    assert data["resolved"] == {
        "runId": first.run_id,
        "treeHash": "base-tree",
        "matchedExactCommit": True,
    }
    assert sorted(data["rows"], key=lambda r: (r["inputHash"], r["scorer"])) == [
        {"inputHash": FIVE_PLUS_SEVEN_HASH, "scorer": "exact", "score": 1},
        {"inputHash": FIVE_PLUS_SEVEN_HASH, "scorer": "length", "score": 1},
        {"inputHash": "a0ebc03bdc71de7b", "scorer": "exact", "score": 1},
    ]


def test_without_a_run_at_the_hash_the_newest_run_of_the_key_is_used(client, headers):
    post_run(client, headers, sdk_run(rows(1), tree_hash="tree-1"))
    newest = post_run(client, headers, sdk_run(rows(0), tree_hash="tree-2"))
    post_run(client, headers, sdk_run(rows(1), experiment_key="other", tree_hash="tree-3"))

    data = baseline(client, headers, experiment_key="math-eval", tree_hash="unknown-tree")

    assert data["resolved"] == {
        "runId": newest.run_id,
        "treeHash": "tree-2",
        "matchedExactCommit": False,
    }
    assert {r["score"] for r in data["rows"] if r["scorer"] == "exact"} == {0}


def test_a_run_without_a_tree_hash_falls_back_with_an_empty_tree(client, headers):
    run = post_run(client, headers, sdk_run(rows(1), tree_hash=None))
    data = baseline(client, headers, experiment_key="math-eval", tree_hash="t")
    assert data["resolved"] == {"runId": run.run_id, "treeHash": "", "matchedExactCommit": False}


def test_the_dataset_path_is_accepted_and_ignored(client, headers):
    run = post_run(client, headers, sdk_run(rows(1), dataset_path="a.jsonl"))
    data = baseline(
        client, headers, experiment_key="math-eval", tree_hash="tree-1", dataset_path="b.jsonl"
    )
    assert data["resolved"]["runId"] == run.run_id
    assert len(data["rows"]) == 3


def test_no_run_of_the_key_is_a_200_with_nothing_resolved(client, headers):
    post_run(client, headers, sdk_run(rows(1), experiment_key="another"))
    data = baseline(client, headers, experiment_key="math-eval", tree_hash="tree-1")
    assert data == {"resolved": None, "rows": []}


def test_rows_whose_input_is_not_json_are_skipped(client, headers):
    run = sdk_run(rows(1))
    for span in run.spans:
        for attribute in span["attributes"]:
            if attribute["key"] == "agentmark.dataset_input" and "5 + 7" in str(attribute):
                attribute["value"] = {"stringValue": "[REDACTED]"}
    post_run(client, headers, run)

    data = baseline(client, headers, experiment_key="math-eval", tree_hash="tree-1")

    assert data["rows"] == [{"inputHash": "a0ebc03bdc71de7b", "scorer": "exact", "score": 1}]


def test_experiment_key_and_tree_hash_are_required(client, headers):
    for params in (
        {"tree_hash": "t"},
        {"experiment_key": "k"},
        {"experiment_key": "", "tree_hash": "t"},
        {"experiment_key": "k", "tree_hash": ""},
    ):
        response = client.get("/v1/experiments/baseline", params=params, headers=headers)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "invalid_query_params"


def test_another_apps_runs_are_never_a_baseline(admin, client, headers, key_headers):
    post_run(client, headers, sdk_run(rows(1)))
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    data = baseline(client, other, experiment_key="math-eval", tree_hash="tree-1")
    assert data == {"resolved": None, "rows": []}


def test_an_sdk_key_gets_403_and_a_gate_key_gets_the_baseline(admin, app_id, client, key_headers):
    """The SDK preset has no experiment.read; a CI gate key needs it (docs/experiments.md)."""
    sdk = key_headers(admin.create_key(app_id, role="sdk"))
    gate = key_headers(
        admin.create_key(
            app_id,
            permissions=["template.read", "trace.ingest", "score.write", "experiment.read"],
        )
    )
    run = post_run(client, gate, sdk_run(rows(1)))
    params = {"experiment_key": "math-eval", "tree_hash": "tree-1"}

    refused = client.get("/v1/experiments/baseline", params=params, headers=sdk)

    assert refused.status_code == 403
    assert refused.json()["error"]["required_permission"] == "experiment.read"
    assert baseline(client, gate, **params)["resolved"]["runId"] == run.run_id
