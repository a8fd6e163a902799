"""Example requests for the experiment routes (see ``tests/route_examples/__init__.py``)."""

from __future__ import annotations

from tests.route_examples.base import Context, Example, ExampleRequest

RUN = {
    "name": "summaries v2",
    "experiment_key": "summarize",
    "dataset_path": "datasets/articles.jsonl",
    "prompt_path": "prompts/summarize.prompt.mdx",
    "tree_hash": "1f2e3d4c",
    "items": [
        {
            "input": {"text": "A long article"},
            "expected_output": "A summary",
            "output": "A short summary",
            "scores": [{"name": "correctness", "score": 1}],
        }
    ],
}


def _seed_run(ctx: Context) -> str:
    response = ctx.client.post("/v1/experiments", json=RUN, headers=ctx.full_headers)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _get_run(ctx: Context) -> ExampleRequest:
    return ExampleRequest("GET", f"/v1/experiments/{_seed_run(ctx)}")


def _baseline(ctx: Context) -> ExampleRequest:
    _seed_run(ctx)
    return ExampleRequest(
        "GET",
        "/v1/experiments/baseline",
        params={"experiment_key": "summarize", "tree_hash": "a-newer-tree"},
    )


EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/v1/experiments"): lambda ctx: ExampleRequest("POST", "/v1/experiments", json=RUN),
    ("GET", "/v1/experiments"): lambda ctx: ExampleRequest(
        "GET", "/v1/experiments", params={"experiment_key": "summarize"}
    ),
    ("GET", "/v1/experiments/{experimentId}"): _get_run,
    ("GET", "/v1/experiments/baseline"): _baseline,
}
