"""The two apps only the benchmark serves: the bare ASGI ceiling and the gateway
with authentication switched off on ``GET /v1/templates``.

Neither is reachable from ``agentmark-gateway serve``: only the bench launcher
(``python -m agentmark_gateway.bench.serve``) names these factories.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from agentmark_gateway.api_keys.authenticate import Authenticator
from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.app import create_app
from agentmark_gateway.errors import ApiError
from agentmark_gateway.permissions.catalog import PERMISSION_NAMES
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.settings import Settings

BASELINE_BODY = b'{"data":{"status":"ok"}}'
BENCH_APP_ID_ENV = "AGENTMARK_BENCH_APP_ID"
UNAUTHENTICATED_ROUTE = ("GET", "/v1/templates")

_BASELINE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BASELINE_BODY)).encode()),
]


async def baseline_app(scope: Scope, receive: Receive, send: Send) -> None:
    """(a): no framework, no routing, no database; a constant small JSON body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _BASELINE_HEADERS})
    await send({"type": "http.response.body", "body": BASELINE_BODY})


def baseline_factory() -> Any:
    return baseline_app


class UncheckedAuthenticator(Authenticator):
    """(c)'s key check: on ``GET /v1/templates`` every request gets ``key``, unverified.

    The same gate and the same handler (with its template cache) as (b), minus
    the key check itself: no parsing, no cache lookup of the key, no rate
    limiter, no last-used record. Every other route checks keys as always.
    """

    def __init__(self, real: Authenticator, key: VerifiedKey) -> None:
        super().__init__(real.keys, real.limiter, real.client_addresses, real.last_used)
        self.key = key

    def authenticate_known(
        self, authorizations: list[str], app_ids: list[str], scope: Scope
    ) -> VerifiedKey | ApiError | None:
        if (scope["method"], scope["path"]) == UNAUTHENTICATED_ROUTE:
            return self.key
        return super().authenticate_known(authorizations, app_ids, scope)


def create_bench_app(settings: Settings, *, app_id: str) -> FastAPI:
    """(c): the gateway, where ``GET /v1/templates`` answers for ``app_id`` without a key."""
    key = VerifiedKey(
        id="key_bench",
        app_id=app_id,
        name="bench",
        permissions=frozenset(PERMISSION_NAMES),
        expires_at=None,
    )
    gateway = Gateway.build(settings)
    gateway.authenticator = UncheckedAuthenticator(gateway.authenticator, key)
    return create_app(settings, gateway=gateway)


def bench_factory() -> FastAPI:
    """Entry point of each bench server worker: settings and app id from the environment."""
    return create_bench_app(Settings(), app_id=os.environ[BENCH_APP_ID_ENV])
