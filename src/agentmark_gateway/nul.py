"""NUL characters: PostgreSQL text cannot hold one, so no query may be built from one.

A ``%00`` in a URL path or query string is refused at the door, for every API
route, before a handler filters by it: 400 ``invalid_path_params`` or
``invalid_query_params``, on SQLite and PostgreSQL alike (SQLite would have
answered "no match", PostgreSQL a 500). Bodies are checked by their schemas;
what still reaches PostgreSQL with a NUL is answered 400 by the error handlers
(``error_handlers._is_nul_rejection``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from agentmark_gateway.error_handlers import error_response

__all__ = ["NulGuardMiddleware"]

API_PREFIX = "/v1/"


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            refusal = _refusal(scope)
            if refusal is not None:
                response = error_response(400, *refusal)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


NUL_PROBLEM = "must not contain NUL characters (%00, a control character)"


def _refusal(scope: Scope) -> tuple[str, str] | None:
    """(code, message) for a request to refuse, else None."""
    # The server has decoded the path already; the query string is still raw.
    if "\x00" in scope["path"]:
        return "invalid_path_params", f"Invalid path parameters: {NUL_PROBLEM}"
    query: bytes = scope.get("query_string", b"")
    if query and (b"%00" in query or b"\x00" in query):
        return "invalid_query_params", f"Invalid query parameters: {_culprit(query)}{NUL_PROBLEM}"
    return None


def _culprit(query: bytes) -> str:
    """``name: `` of the first parameter holding a NUL, so the message can name it."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in value and "\x00" not in name:
            return f"{name}: "
    return ""
