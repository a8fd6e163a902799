"""Example requests for the score routes (see ``tests/route_examples/__init__.py``)."""

from __future__ import annotations

from tests.route_examples.base import Context, Example, ExampleRequest

SCORE = {"resource_id": "0af7651916cd43dd8448eb211c80319c", "name": "accuracy", "score": 0.9}


def _seed_score(ctx: Context) -> str:
    response = ctx.client.post("/v1/scores", json=SCORE, headers=ctx.full_headers)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _get_score(ctx: Context) -> ExampleRequest:
    return ExampleRequest("GET", f"/v1/scores/{_seed_score(ctx)}")


def _delete_score(ctx: Context) -> ExampleRequest:
    return ExampleRequest("DELETE", f"/v1/scores/{_seed_score(ctx)}")


EXAMPLES: dict[tuple[str, str], Example] = {
    ("POST", "/v1/scores"): lambda ctx: ExampleRequest("POST", "/v1/scores", json=SCORE),
    ("POST", "/v1/scores/batch"): lambda ctx: ExampleRequest(
        "POST", "/v1/scores/batch", json={"scores": [SCORE, {**SCORE, "name": "tone"}]}
    ),
    ("GET", "/v1/scores"): lambda ctx: ExampleRequest(
        "GET", "/v1/scores", params={"name": "accuracy", "limit": 10}
    ),
    ("GET", "/v1/scores/names"): lambda ctx: ExampleRequest("GET", "/v1/scores/names"),
    ("GET", "/v1/scores/aggregations"): lambda ctx: ExampleRequest(
        "GET", "/v1/scores/aggregations"
    ),
    ("GET", "/v1/scores/{scoreId}"): _get_score,
    ("DELETE", "/v1/scores/{scoreId}"): _delete_score,
}
