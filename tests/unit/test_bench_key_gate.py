"""KeyGate, the early key check the benchmark called for: same answers, less work.

A refused key is answered before routing and before any database session; an
accepted key is verified once (so the rate limiter counts it once).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.permissions.enforce import gated_routes, requires


def _toy_app(*routers: tuple[APIRouter, str]) -> FastAPI:
    app = FastAPI()
    for router, prefix in routers:
        app.include_router(router, prefix=prefix)
    return app


async def _ok() -> dict[str, str]:
    return {"ok": "yes"}


def test_only_static_data_paths_the_router_would_pick_are_gated():
    router = APIRouter()
    router.add_api_route("/v1/open", _ok, methods=["GET"])
    router.add_api_route("/v1/{anything}", _ok, methods=["POST"])
    router.add_api_route(
        "/v1/things", _ok, methods=["GET", "POST"], dependencies=[requires("trace.read")]
    )
    router.add_api_route(
        "/v1/things/{thing}", _ok, methods=["GET"], dependencies=[requires("trace.read")]
    )
    table = gated_routes(_toy_app((router, "")).router.routes)
    # POST /v1/things is shadowed by POST /v1/{anything}; a path parameter is never gated.
    assert table == {("GET", "/v1/things"): ("trace.read",)}


def test_a_prefixed_router_is_left_to_requires():
    router = APIRouter()
    router.add_api_route("/things", _ok, methods=["GET"], dependencies=[requires("trace.read")])
    assert gated_routes(_toy_app((router, "/v1")).router.routes) == {}


def test_a_made_up_key_is_refused_before_a_database_session_is_opened(client):
    gateway = client.app.state.gateway
    opened = []
    real = gateway.sessionmaker
    gateway.sessionmaker = lambda *a, **k: opened.append(1) or real(*a, **k)
    try:
        response = client.get(
            "/v1/templates",
            params={"path": "a.prompt.mdx"},
            headers={"Authorization": keygen.generate(), "X-Agentmark-App-Id": "app_x"},
        )
    finally:
        gateway.sessionmaker = real
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}
    assert opened == []


def test_a_key_without_the_permission_gets_the_usual_403(admin, client, key_headers):
    key = admin.create_key(admin.create_app(), permissions=["trace.read"])
    response = client.get(
        "/v1/templates", params={"path": "a.prompt.mdx"}, headers=key_headers(key)
    )
    assert response.status_code == 403
    assert response.json()["error"]["required_permission"] == "template.read"


def test_an_accepted_key_is_verified_once_per_request(admin, client, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk")
    recorder = client.app.state.gateway.authenticator.last_used
    admitted = []
    real = recorder.record

    def counting(key_id: str) -> None:
        admitted.append(key_id)
        real(key_id)

    recorder.record = counting
    try:
        response = client.get(
            "/v1/templates", params={"path": "missing.prompt.mdx"}, headers=key_headers(key)
        )
    finally:
        recorder.record = real
    assert response.status_code == 404
    assert admitted == [key["id"]]


def test_a_body_over_the_limit_is_refused_before_the_key_is_looked_at(client, settings):
    response = client.post(
        "/v1/traces",
        content=b"x",
        headers={"Content-Length": str(settings.max_body_bytes + 1)},
    )
    assert response.status_code == 413
