"""Example requests for the experiment routes (see ``tests/route_examples/__init__.py``).

A run is seeded as the clients record it: spans through ``POST /v1/traces`` and
scores through ``POST /v1/scores``.
"""

from __future__ import annotations

from tests.fixtures.otlp.experiment_runs import Row, post_run, sdk_run
from tests.route_examples.base import Context, Example, ExampleRequest


def _seed_run(ctx: Context) -> str:
    run = sdk_run([Row(input={"text": "A long article"}, expected="A summary", scores={"ok": 1})])
    return post_run(ctx.client, ctx.full_headers, run).run_id


def _get_run(ctx: Context) -> ExampleRequest:
    return ExampleRequest("GET", f"/v1/experiments/{_seed_run(ctx)}")


def _run_traces(ctx: Context) -> ExampleRequest:
    return ExampleRequest("GET", f"/v1/runs/{_seed_run(ctx)}/traces")


def _baseline(ctx: Context) -> ExampleRequest:
    _seed_run(ctx)
    return ExampleRequest(
        "GET",
        "/v1/experiments/baseline",
        params={"experiment_key": "math-eval", "tree_hash": "a-newer-tree"},
    )


EXAMPLES: dict[tuple[str, str], Example] = {
    ("GET", "/v1/experiments"): lambda ctx: ExampleRequest(
        "GET", "/v1/experiments", params={"dataset_path": "math.dataset.jsonl"}
    ),
    ("GET", "/v1/experiments/{experimentId}"): _get_run,
    ("GET", "/v1/experiments/baseline"): _baseline,
    ("GET", "/v1/runs/{runId}/traces"): _run_traces,
}
