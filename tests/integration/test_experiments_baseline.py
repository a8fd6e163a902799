"""GET /v1/experiments/baseline: the newest matching run made from other sources."""

from __future__ import annotations

import pytest

BASE = {"name": "run", "experiment_key": "summarize", "prompt_path": "prompts/summarize.mdx"}


@pytest.fixture
def headers(admin, key_headers):
    return key_headers(admin.create_key(admin.create_app(), role="full-access"))


def record(client, headers, **fields):
    body = {**BASE, "dataset_path": "datasets/a.jsonl", **fields}
    body["items"] = [{"input": 1, "output": 2, "scores": [{"name": "ok", "score": 1}]}]
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def baseline(client, headers, **params):
    return client.get("/v1/experiments/baseline", params=params, headers=headers)


def baseline_id(client, headers, **params):
    response = baseline(client, headers, **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


@pytest.fixture
def runs(client, headers):
    """Four runs, oldest first: trees 1 and 2 on dataset a, tree 3 on b, one without a tree."""
    return {
        "tree-1": record(client, headers, tree_hash="tree-1"),
        "tree-2": record(client, headers, tree_hash="tree-2"),
        "tree-3 on b": record(client, headers, tree_hash="tree-3", dataset_path="datasets/b.jsonl"),
        "other key": record(client, headers, experiment_key="translate", tree_hash="tree-9"),
    }


def test_the_baseline_is_the_newest_run_from_another_tree(client, headers, runs):
    a = {"experiment_key": "summarize", "dataset_path": "datasets/a.jsonl"}
    assert baseline_id(client, headers, **a, tree_hash="tree-2") == runs["tree-1"]
    assert baseline_id(client, headers, **a, tree_hash="tree-1") == runs["tree-2"]
    assert baseline_id(client, headers, **a, tree_hash="tree-new") == runs["tree-2"]


def test_without_a_dataset_every_dataset_of_the_key_counts(client, headers, runs):
    assert baseline_id(client, headers, experiment_key="summarize") == runs["tree-3 on b"]
    assert (
        baseline_id(client, headers, experiment_key="summarize", tree_hash="tree-3")
        == (runs["tree-2"])
    )


def test_the_prompt_path_alone_can_name_the_experiment(client, headers, runs):
    found = baseline_id(client, headers, prompt_path="prompts/summarize.mdx", tree_hash="x")
    assert found == runs["other key"]


def test_a_run_without_a_tree_hash_counts_as_other_sources(client, headers, runs):
    untracked = record(client, headers)
    found = baseline_id(
        client,
        headers,
        experiment_key="summarize",
        dataset_path="datasets/a.jsonl",
        tree_hash="tree-2",
    )
    assert found == untracked


def test_the_baseline_carries_items_and_summaries(client, headers, runs):
    response = baseline(client, headers, experiment_key="translate")
    run = response.json()["data"]
    assert run["treeHash"] == "tree-9"
    assert run["itemCount"] == 1 and len(run["items"]) == 1
    assert run["scoreSummaries"][0]["name"] == "ok"


def test_no_earlier_run_is_a_404(client, headers, runs):
    for params in (
        {"experiment_key": "unknown"},
        {"experiment_key": "translate", "tree_hash": "tree-9"},
        {"experiment_key": "summarize", "dataset_path": "datasets/none.jsonl"},
    ):
        response = baseline(client, headers, **params)
        assert response.status_code == 404, params
        assert response.json()["error"]["code"] == "experiment_not_found"


def test_the_baseline_needs_an_experiment_key_or_prompt_path(client, headers, runs):
    response = baseline(client, headers, dataset_path="datasets/a.jsonl")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query_params"


def test_another_apps_runs_are_never_a_baseline(admin, client, key_headers, headers, runs):
    other = key_headers(admin.create_key(admin.create_app(), role="full-access"))
    response = baseline(client, other, experiment_key="summarize")
    assert response.status_code == 404
    newest_mine = record(client, headers, tree_hash="tree-4")
    record(client, other, tree_hash="tree-5")
    assert baseline_id(client, headers, experiment_key="summarize") == newest_mine


def test_the_baseline_route_is_not_read_as_a_run_id(client, headers):
    response = baseline(client, headers, experiment_key="summarize")
    assert response.status_code == 404
    assert "baseline" in response.json()["error"]["message"]
