"""The application factory: ``create_app(settings)`` builds one gateway process."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from agentmark_gateway import __version__, error_handlers, openapi, routers
from agentmark_gateway.bodies import BodyLimitMiddleware
from agentmark_gateway.forwarded import ForwardedSchemeMiddleware
from agentmark_gateway.nul import NulGuardMiddleware
from agentmark_gateway.observability.observer import RequestObserver
from agentmark_gateway.permissions.gate import KeyGate
from agentmark_gateway.ratelimit import RateLimitHeadersMiddleware
from agentmark_gateway.read_timeouts import BodyReadTimeoutMiddleware
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.settings import Settings
from agentmark_gateway.templates.cache import ANSWERED_ROUTE as TEMPLATES_ROUTE


class GatewayApi(FastAPI):
    """The gateway's ASGI app: FastAPI, with ``KeyGate`` in front of all of it.

    The gate sits outside the framework's own middleware stack so that the SDKs'
    hot requests (a refused key, a template already rendered) cost only the key
    check; whatever it passes on meets the full stack as usual.
    """

    def build_middleware_stack(self) -> ASGIApp:
        gateway: Gateway = self.state.gateway
        gate = KeyGate(
            super().build_middleware_stack(),
            authenticator=gateway.authenticator,
            body_limit=gateway.settings.max_body_bytes,
            # The template feature's rendered answers, sent by the gate on a hit.
            answers={TEMPLATES_ROUTE: gateway.templates},
            observe=gateway.usage.observe if gateway.usage.enabled else None,
        )
        # Outside the gate, so that its own answers get them too: the scheme a
        # trusted proxy reports (and HSTS over https), then a request id and the
        # operator's metrics, outermost.
        forwarded = ForwardedSchemeMiddleware(gate, resolver=gateway.client_addresses)
        return RequestObserver(forwarded, gateway=gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.middleware_stack is None or self.root_path:
            await super().__call__(scope, receive, send)
            return
        # Straight to the gate: FastAPI's own entry only adds its telemetry checks.
        scope["app"] = self
        await self.middleware_stack(scope, receive, send)


def create_app(settings: Settings | None = None, *, gateway: Gateway | None = None) -> GatewayApi:
    settings = settings or Settings()
    gateway = gateway or Gateway.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        # Everything built so far lives as long as the process: keep it out of the
        # collector's full passes, which would otherwise walk it all again and again.
        gc.freeze()
        try:
            yield
        finally:
            await gateway.stop()

    app = GatewayApi(
        title="AgentMark Gateway",
        version=__version__,
        description="Scoped API keys in front of an app's traces, scores, templates, "
        "datasets, metrics and experiments.",
        openapi_url="/v1/openapi.json",
        # /docs is the dashboard's (web/api_docs.py): Swagger UI from the package, not a CDN.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks look for configured providers on
        # every request (tens of µs); the gateway does not export its own traces.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.gateway = gateway
    app.state.settings = settings
    error_handlers.install(app)
    # KeyGate (outermost, see GatewayApi) answers a bad key on a hot route before a
    # NUL is even looked for; it leaves a body declared over the limit to
    # BodyLimitMiddleware, so 413 still comes before any key check.
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(BodyReadTimeoutMiddleware, seconds=settings.read_timeout_seconds)

    routers.include_all(app)
    openapi.install(app)
    return app
