"""CSRF tokens: HMAC-SHA256 of the browser's session (or pre-session) cookie.

A signed-in browser's token is derived from its session token; before sign-in
(login, setup and invite forms) from a random pre-session cookie. A page
carries the token in each form's hidden input and in ``hx-headers`` for htmx;
every state-changing request must send it back. A forged cross-site post can
send the cookie but cannot compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from agentmark_gateway.errors import Forbidden

SESSION_COOKIE = "agentmark_session"
PRESESSION_COOKIE = "agentmark_presession"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

REFUSED = "This form has expired or did not come from this site. Reload the page and try again."


def secure_cookies(request: Request) -> bool:
    """Cookies get ``Secure`` over https (as a trusted proxy reports it, see
    ``forwarded``) and whenever the public URL is https, so they never travel in
    clear text even on a request that reached the gateway some other way."""
    settings = request.app.state.gateway.settings
    return request.url.scheme == "https" or settings.base_url.startswith("https://")


def _anchor(request: Request) -> str | None:
    fresh: str | None = getattr(request.state, "new_presession", None)
    return fresh or request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)


def _sign(request: Request, anchor: str) -> str:
    pepper: bytes = request.app.state.gateway.pepper
    return hmac.new(pepper, b"csrf:" + anchor.encode(), hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    """The token this page's forms carry; starts a pre-session when the browser has none."""
    anchor = _anchor(request)
    if anchor is None:
        anchor = secrets.token_urlsafe(32)
        request.state.new_presession = anchor
    return _sign(request, anchor)


async def verify(request: Request) -> None:
    """Raise 403 unless the request carries the token of the cookie it sent."""
    anchor = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)
    sent = request.headers.get(HEADER)
    content_type = request.headers.get("content-type", "")
    if not sent and content_type.startswith(FORM_TYPES):
        value = (await request.form()).get(FIELD)
        sent = value if isinstance(value, str) else None
    if not anchor or not sent or not hmac.compare_digest(sent, _sign(request, anchor)):
        raise Forbidden(REFUSED, code="csrf_failed")


def set_presession_cookie(request: Request, response: Response) -> None:
    """Called once per response: keep the pre-session a page's token was made from."""
    fresh = getattr(request.state, "new_presession", None)
    if fresh:
        response.set_cookie(
            PRESESSION_COOKIE,
            fresh,
            httponly=True,
            samesite="lax",
            secure=secure_cookies(request),
            path="/",
        )
