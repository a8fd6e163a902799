"""``X-RateLimit-*`` on the responses of requests the limiter counted.

``Gateway.verify_request`` leaves the limiter's ``Decision`` in the ASGI scope;
this middleware copies its headers into the response as it starts. A plain
ASGI middleware (no ``BaseHTTPMiddleware``) so the cost is one wrapped ``send``.
A 429 carries the same headers already; setting them again replaces, never
duplicates.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.ratelimit.limiter import Decision

__all__ = ["SCOPE_KEY", "RateLimitHeadersMiddleware"]

SCOPE_KEY = "agentmark.rate_limit"


class RateLimitHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get(SCOPE_KEY)
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
