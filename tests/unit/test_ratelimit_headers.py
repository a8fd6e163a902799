"""The middleware that copies the limiter's decision into response headers."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from agentmark_gateway.ratelimit import SCOPE_KEY, Decision, RateLimitHeadersMiddleware

ALLOWED = Decision(True, 10, 7, 1_800_000_060.0)
REFUSED = Decision(False, 10, 0, 1_800_000_060.0, 12)


async def counted(request: Request) -> PlainTextResponse:
    request.scope[SCOPE_KEY] = ALLOWED
    return PlainTextResponse("ok")


async def uncounted(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def refused(request: Request) -> JSONResponse:
    request.scope[SCOPE_KEY] = REFUSED
    return JSONResponse({"error": {}}, status_code=429, headers=REFUSED.headers())


def client() -> TestClient:
    routes = [Route(f"/{f.__name__}", f) for f in (counted, uncounted, refused)]
    app = Starlette(routes=routes)
    app.add_middleware(RateLimitHeadersMiddleware)
    return TestClient(app)


def test_a_counted_request_gets_the_rate_limit_headers():
    response = client().get("/counted")
    assert response.headers["x-ratelimit-limit"] == "10"
    assert response.headers["x-ratelimit-remaining"] == "7"
    assert response.headers["x-ratelimit-reset"] == "1800000060"
    assert "retry-after" not in response.headers


def test_an_uncounted_request_gets_none():
    response = client().get("/uncounted")
    assert not any(name.startswith("x-ratelimit") for name in response.headers)


def test_a_refusal_keeps_one_copy_of_each_header():
    response = client().get("/refused")
    assert response.headers.get_list("x-ratelimit-remaining") == ["0"]
    assert response.headers.get_list("retry-after") == ["12"]
