"""The OpenAPI document at /v1/openapi.json, built once from the routes.

FastAPI describes each route from its signature; this adds what only the
gateway knows: the permissions each data route requires (from ``requires()``,
the one declaration), who may call it (API key, user session or anyone), the
errors as they really leave (the envelope; never FastAPI's default 422), and
links from each create to where its id goes next.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from agentmark_gateway.permissions.enforce import PUBLIC_ROUTES, all_routes, route_permissions


def install(app: FastAPI) -> None:
    """Serve the gateway's document (built on first request, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _add_security(schema, app)
        _add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_security(schema: dict[str, Any], app: FastAPI) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "An app's API key, raw or as `Bearer <key>`.",
            },
            "SessionToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "From /v1/auth/login.",
            },
        }
    )
    components.setdefault("schemas", {})["ErrorEnvelope"] = ERROR_ENVELOPE
    app_header = {
        "name": "X-Agentmark-App-Id",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The app the API key belongs to.",
    }
    for route in all_routes(app.routes):
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
            continue
        permissions = route_permissions(route)
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            public = (method, route.path) in PUBLIC_ROUTES
            _describe_errors(
                operation,
                data_route=permissions is not None,
                signed_in=not public,
                addressed="{" in route.path,
            )
            if permissions is not None:
                _describe_permissions(operation, permissions)
                operation["security"] = [{"ApiKey": []}]
                params = operation.setdefault("parameters", [])
                if not any(p.get("name", "").lower() == "x-agentmark-app-id" for p in params):
                    params.append(app_header)
            elif not public:
                operation["security"] = [{"SessionToken": []}]


def _describe_permissions(operation: dict[str, Any], permissions: tuple[str, ...]) -> None:
    """A data route's permissions, for machines (``x-required-permissions``) and readers."""
    operation["x-required-permissions"] = list(permissions)
    needed = ", ".join(f"`{p}`" for p in permissions)
    base = f"{operation['description']}\n\n" if operation.get("description") else ""
    operation["description"] = f"{base}Requires an API key with: {needed}."


# What a create answers, and where its id goes next: OpenAPI links, so that clients
# and stateful testers (schemathesis) can chain create -> read, edit, delete.
LINKS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "/v1/scores",
        "scoreId",
        "$response.body#/data/id",
        (("get", "/v1/scores/{scoreId}"), ("delete", "/v1/scores/{scoreId}")),
    ),
    (
        "/v1/apps",
        "app_id",
        "$response.body#/data/id",
        (
            ("get", "/v1/apps/{app_id}"),
            ("patch", "/v1/apps/{app_id}"),
            ("delete", "/v1/apps/{app_id}"),
        ),
    ),
    (
        "/v1/api-keys",
        "key_id",
        "$response.body#/data/id",
        (
            ("get", "/v1/api-keys/{key_id}"),
            ("patch", "/v1/api-keys/{key_id}"),
            ("post", "/v1/api-keys/{key_id}/roll"),
            ("delete", "/v1/api-keys/{key_id}"),
        ),
    ),
    (
        "/v1/members",
        "user_id",
        "$response.body#/data/id",
        (("patch", "/v1/members/{user_id}"), ("delete", "/v1/members/{user_id}")),
    ),
)


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for source, parameter, value, targets in LINKS:
        created = paths.get(source, {}).get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = created.setdefault("links", {})
        for method, target in targets:
            operation = paths.get(target, {}).get(method)
            if operation is not None:
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: value},
                }


ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}

_ERROR_STATUSES = {
    "400": "Invalid request (body, query or path parameters)",
    "401": "Missing, malformed, unknown, deleted or expired credentials",
    "413": "Request body too large",
    "429": "Rate limited",
    "503": "Database unavailable; retry later",
}


def _describe_errors(
    operation: dict[str, Any], *, data_route: bool, signed_in: bool, addressed: bool
) -> None:
    """Errors as they really leave: the envelope with 400, never FastAPI's default 422."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    statuses = dict(_ERROR_STATUSES)
    if data_route:
        statuses["403"] = "The key lacks a permission this route needs"
    elif signed_in:
        statuses["403"] = "The user's organization role does not allow this"
    if addressed:
        statuses["404"] = "No such record (in this app)"
    for status, description in statuses.items():
        responses.setdefault(
            status,
            {
                "description": description,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
                },
            },
        )
