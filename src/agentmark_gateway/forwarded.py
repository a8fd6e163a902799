"""The scheme a request really came over: https behind a TLS-terminating proxy.

The server runs without its own proxy-header handling, so that one rule, the
operator's ``AGENTMARK_TRUSTED_PROXIES`` (``netaccess``), decides both the
client address and the scheme. ``X-Forwarded-Proto`` from a trusted proxy sets
the request's scheme (so cookies get ``Secure``); from any other peer it is
ignored, as a client could write anything there. Every answer over https
carries ``Strict-Transport-Security``, so a browser never tries plain HTTP again.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.netaccess import ClientAddressResolver

__all__ = ["HSTS", "ForwardedSchemeMiddleware"]

FORWARDED_PROTO = b"x-forwarded-proto"
# One year: the usual value once a site serves https only.
HSTS = (b"strict-transport-security", b"max-age=31536000")
SCHEMES = {"http": "http", "https": "https"}


class ForwardedSchemeMiddleware:
    def __init__(self, app: ASGIApp, *, resolver: ClientAddressResolver) -> None:
        self.app = app
        self.resolver = resolver
        # Without trusted proxies no request's headers are looked at.
        self.proxied = bool(resolver.trusted.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme = self._forwarded_scheme(scope) if self.proxied else None
        if scheme is not None:
            scope["scheme"] = scheme
        if scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS]
            await send(message)

        await self.app(scope, receive, send_with_hsts)

    def _forwarded_scheme(self, scope: Scope) -> str | None:
        values = [value for name, value in scope["headers"] if name == FORWARDED_PROTO]
        if not values:
            return None
        client = scope.get("client")
        if not self.resolver.is_trusted_proxy(client[0] if client else None):
            return None
        # The last entry is the one the nearest proxy (a trusted one) wrote.
        nearest = values[-1].decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        return SCHEMES.get(nearest)
