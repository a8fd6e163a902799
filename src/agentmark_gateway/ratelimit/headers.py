"""``X-RateLimit-*`` on the responses of requests the limiter counted.

``authenticate`` (api_keys/authenticate.py) leaves the limiter's ``Decision`` in
the ASGI scope; ``with_rate_limit_headers`` adds its headers to an answer's, for
this middleware as the response starts and for ``KeyGate``'s own answers. A plain
ASGI middleware (no ``BaseHTTPMiddleware``) so the cost is one wrapped ``send``.
A 429 carries the same headers already; setting them again replaces, never
duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.ratelimit.limiter import Decision

__all__ = ["SCOPE_KEY", "RateLimitHeadersMiddleware", "with_rate_limit_headers"]

SCOPE_KEY = "agentmark.rate_limit"


def with_rate_limit_headers(
    scope: Scope, headers: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` with the ``X-RateLimit-*`` of the request's ``Decision`` set (replaced, never
    repeated); unchanged when the limiter did not count the request."""
    decision: Decision | None = scope.get(SCOPE_KEY)
    if decision is None:
        return list(headers)
    limits = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in decision.headers().items()
    ]
    names = {name for name, _ in limits}
    return [*(pair for pair in headers if pair[0].lower() not in names), *limits]


class RateLimitHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and SCOPE_KEY in scope:
                message["headers"] = with_rate_limit_headers(scope, message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)
