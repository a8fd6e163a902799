"""The route class of every dashboard page: CSRF gate, HTML errors, security headers.

Doing these three in the route class rather than in each handler means no page
can forget them: a state-changing request without its token never reaches a
handler, and a domain error becomes a readable page (or an htmx flash message)
instead of the API's JSON envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentmark_gateway.errors import ApiError, BadRequest
from agentmark_gateway.web import csrf
from agentmark_gateway.web.session import SignInRequired
from agentmark_gateway.web.templating import is_htmx, render

# Scripts and styles come from this origin only; no framing, no inline code.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back to the page the user was on (GET pages only)."""
    if request.method != "GET":
        return "/login"
    if is_htmx(request):
        # A fragment is no place to come back to; the page that asked for it is.
        current = request.headers.get("hx-current-url")
        path = urlsplit(current).path if current else "/"
    else:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if path in ("/", "/login") else f"/login?next={quote(path, safe='')}"


def local_path(target: str | None) -> str:
    r"""``target`` when it is a plain path on this site, else ``/``.

    Browsers drop tabs and newlines from a URL, read a backslash as a slash and
    trim control characters, so ``/\t/evil.example`` or ``/\evil.example``
    becomes ``//evil.example``: another site. Only printable ASCII without spaces
    or backslashes (what ``sign_in_url`` produces) starting with exactly one
    slash is a local path; anything else, however it would be read, is not.
    """
    if (
        target
        and target.isascii()
        and target.isprintable()
        and " " not in target
        and "\\" not in target
        and target.startswith("/")
        and not target.startswith("//")
    ):
        return target
    return "/"


def redirect(request: Request, url: str) -> Response:
    """A redirect that works for a plain form post (303) and for htmx (HX-Redirect).

    Never off site: ``url`` goes through ``local_path``, the one rule for targets.
    """
    url = local_path(url)
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def error_response(request: Request, error: ApiError) -> Response:
    context = {"status": error.status_code, "message": error.message, "code": error.code}
    headers = dict(error.headers)
    if is_htmx(request):
        # Errors outside a form land in the page's flash area, above any open dialog.
        headers.update(
            {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", "HX-Trigger": "close-modal"}
        )
        return render(
            request, "_flash.html", context, status_code=error.status_code, headers=headers
        )
    return render(request, "error.html", context, status_code=error.status_code, headers=headers)


def _validation_error(exc: RequestValidationError) -> BadRequest:
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "form"
    return BadRequest(f"The form was incomplete ({field}: {first.get('msg', 'invalid')}).")


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                if request.method not in csrf.SAFE_METHODS:
                    await csrf.verify(request)
                response = await handler(request)
            except SignInRequired:
                response = redirect(request, sign_in_url(request))
            except ApiError as error:
                response = error_response(request, error)
            except RequestValidationError as exc:
                response = error_response(request, _validation_error(exc))
            csrf.set_presession_cookie(request, response)
            add_security_headers(response)
            return response

        return guarded


class SecureStatic:
    """Static files with the same headers as the pages (nosniff above all)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for name, value in (*SECURITY_HEADERS.items(), ("Cache-Control", "no-cache")):
                    headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
