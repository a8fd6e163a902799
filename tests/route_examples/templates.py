"""Example requests for /v1/templates and /v1/prompts (see base.py)."""

from __future__ import annotations

from tests.route_examples.base import Context, Example, ExampleRequest

AST = {"type": "root", "children": [{"type": "yaml", "value": "name: example"}]}


def _publish(ctx: Context, path: str) -> None:
    response = ctx.client.put(
        "/v1/templates", params={"path": path}, json=AST, headers=ctx.full_headers
    )
    assert response.status_code in (200, 201), response.text


def get_template(ctx: Context) -> ExampleRequest:
    _publish(ctx, "example.prompt.mdx")
    return ExampleRequest(
        "GET", "/v1/templates", params={"path": "example.prompt.mdx", "promptKind": "text"}
    )


def put_template(ctx: Context) -> ExampleRequest:
    return ExampleRequest("PUT", "/v1/templates", params={"path": "example.prompt.mdx"}, json=AST)


def delete_template(ctx: Context) -> ExampleRequest:
    _publish(ctx, "doomed.prompt.mdx")
    return ExampleRequest("DELETE", "/v1/templates", params={"path": "doomed.prompt.mdx"})


def list_prompts(ctx: Context) -> ExampleRequest:
    _publish(ctx, "example.prompt.mdx")
    return ExampleRequest("GET", "/v1/prompts")


EXAMPLES: dict[tuple[str, str], Example] = {
    ("GET", "/v1/templates"): get_template,
    ("PUT", "/v1/templates"): put_template,
    ("DELETE", "/v1/templates"): delete_template,
    ("GET", "/v1/prompts"): list_prompts,
}
