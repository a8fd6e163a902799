"""Every route is public, a management route, or declares permissions, and each
permission a data route declares is enforced: the matrix of DESIGN section 5."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.app import create_app
from agentmark_gateway.auth.deps import Allowed, current_user
from agentmark_gateway.permissions.catalog import PERMISSION_NAMES
from agentmark_gateway.permissions.enforce import PUBLIC_ROUTES, all_routes, route_permissions
from agentmark_gateway.permissions.table import markdown_table, route_rows
from agentmark_gateway.routers import api_routes
from agentmark_gateway.settings import Settings
from tests.route_examples import Context, all_examples

ROOT = Path(__file__).resolve().parents[2]


def _app_routes(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, key_pepper="x"))
    return [r for r in all_routes(app.routes) if isinstance(r, APIRoute)]


def _uses_session(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if dependant.call is current_user or isinstance(dependant.call, Allowed):
            return True
        stack.extend(dependant.dependencies)
    return False


def _data_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted(
        (r.method, r.path, r.permissions) for r in route_rows(api_routes()) if r.kind == "data"
    )


def test_every_v1_route_is_public_or_management_or_declares_permissions(tmp_path):
    for route in _app_routes(tmp_path):
        if not route.path.startswith("/v1") and route.path not in ("/health", "/ready"):
            continue
        for method in route.methods:
            declared = route_permissions(route)
            public = (method, route.path) in PUBLIC_ROUTES
            management = _uses_session(route)
            assert [bool(declared), public, management].count(True) == 1, (
                f"{method} {route.path} must be exactly one of: data route with permissions, "
                "public, management"
            )


def test_management_routes_never_declare_data_permissions(tmp_path):
    for route in _app_routes(tmp_path):
        if _uses_session(route):
            assert route_permissions(route) is None


def test_permissions_doc_is_generated_from_the_code():
    doc = ROOT / "docs" / "permissions.md"
    assert doc.read_text() == markdown_table(api_routes()), (
        "docs/permissions.md is stale: run `agentmark-gateway permissions > docs/permissions.md`"
    )


def test_openapi_names_the_permissions_of_each_data_route(client):
    spec = client.get("/v1/openapi.json").json()
    for method, path, permissions in _data_routes():
        operation = spec["paths"][path][method.lower()]
        assert operation["x-required-permissions"] == list(permissions)
        for permission in permissions:
            assert permission in operation["description"]
        names = [p["name"].lower() for p in operation.get("parameters", [])]
        assert "x-agentmark-app-id" in names


def test_every_data_route_has_an_example_request():
    examples = all_examples()
    missing = [(m, p) for m, p, _ in _data_routes() if (m, p) not in examples]
    assert not missing, f"add examples in tests/route_examples/ for {missing}"


CASES = [
    pytest.param(method, path, permissions, id=f"{method} {path}")
    for method, path, permissions in _data_routes()
]


@pytest.mark.parametrize(("method", "path", "permissions"), CASES)
def test_route_enforces_exactly_its_permissions(admin, client, method, path, permissions):
    app_id = admin.create_app()
    full = admin.create_key(app_id, role="full-access")
    context = Context(client=client, app_id=app_id, full_key=full["plaintext_key"])
    example = all_examples()[(method, path)]

    def call(authorization: str | None):
        request = example(context)
        headers = {**request.headers, "X-Agentmark-App-Id": app_id}
        if authorization is not None:
            headers["Authorization"] = authorization
        else:
            headers.pop("Authorization", None)
        return client.request(
            request.method,
            request.url,
            json=request.json,
            content=request.content,
            params=request.params,
            headers=headers,
        )

    exact = admin.create_key(app_id, permissions=list(permissions))
    response = call(exact["plaintext_key"])
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500, response.text

    for missing in permissions:
        others = sorted(PERMISSION_NAMES - {missing})
        key = admin.create_key(app_id, permissions=others)
        response = call(f"Bearer {key['plaintext_key']}")
        assert response.status_code == 403, response.text
        assert response.json() == {
            "error": {
                "code": "forbidden",
                "message": f"Forbidden: missing required permission '{missing}'",
                "required_permission": missing,
            }
        }

    response = call(None)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Missing auth header"

    malformed = keygen.PREFIX + "x" * 38
    deleted = admin.create_key(app_id, permissions=list(permissions))
    client.delete(
        f"/v1/api-keys/{deleted['id']}", headers={**admin.headers, "X-Agentmark-App-Id": app_id}
    )
    for bad in (malformed, deleted["plaintext_key"], "Bearer", "garbage"):
        response = call(bad)
        assert response.status_code == 401, bad
        assert response.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}
