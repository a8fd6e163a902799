"""Every failure leaves as the envelope of DESIGN section 7."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentmark_gateway.errors import ApiError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"

_LOCATION_CODES = {
    "body": "invalid_request_body",
    "query": "invalid_query_params",
    "path": "invalid_path_params",
    "header": "invalid_headers",
}

_STATUS_CODES = {
    # FastAPI's own refusal of a body it cannot parse (e.g. JSON nested too deeply).
    400: "invalid_request_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


# A body of a million unknown keys has a million errors: the answer names the
# first few, each cut short, and counts the rest (never an echo of the body).
MAX_REPORTED_ERRORS = 20
MAX_ERROR_TEXT = 200


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


def _details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    details = []
    for error in errors[:MAX_REPORTED_ERRORS]:
        loc = [str(part) for part in error.get("loc", ())]
        field = ".".join(loc[1:]) or loc[0] if loc else ""
        details.append({"field": _clip(field), "message": _clip(str(error.get("msg", "")))})
    return details


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    location = str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else "body"
    code = _LOCATION_CODES.get(location, "invalid_request_body")
    what = {"invalid_query_params": "query parameters", "invalid_path_params": "path parameters"}
    details = _details(errors)
    first = details[0] if details else {"field": "", "message": "invalid"}
    message = f"Invalid {what.get(code, 'request body')}: {first['field']}: {first['message']}"
    unreported = len(errors) - len(details)
    if unreported > 0:
        return error_response(400, code, message, details=details, more_errors=unreported)
    return error_response(400, code, message, details=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, ApiError):
        # FastAPI reports any failure while reading a body as "error parsing the body";
        # ours (a body over the limit, 413) keeps its own status and code.
        return await _api_error(request, exc.__cause__)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else "Error"
    if exc.status_code == 404:
        message = "Not found"
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


class _OutageLog:
    """One warning per ``every`` seconds while the database is away, not one per request.

    During an outage every request fails the same way; thousands of identical
    lines a second would bury the log (and fill the disk) without saying more.
    """

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last = -every
        self._quiet = 0

    def warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            self._quiet += 1
            return
        more = f" (and {self._quiet} more since the last warning)" if self._quiet else ""
        log.warning("database unavailable: %s%s", type(exc).__name__, more)
        self._last, self._quiet = now, 0


_outage_log = _OutageLog()


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    _outage_log.warn(exc)
    return error_response(
        503,
        "service_unavailable",
        "The database is unavailable; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "Internal server error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc_type in (PoolTimeout, ConnectionError, OSError):
        app.add_exception_handler(exc_type, _database_down)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(Exception, _unexpected)


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if _looks_like_outage(exc):
        return await _database_down(request, exc)
    if _is_too_complex(exc):
        return error_response(
            400, "request_too_complex", "The request is too large or complex for the database"
        )
    if _is_nul_rejection(exc):
        # A NUL no schema caught (paths and queries never get here: see nul.py).
        return error_response(
            400, "invalid_request_body", "Text must be valid UTF-8 without NUL characters (\\u0000)"
        )
    return await _unexpected(request, exc)


# character_not_in_repertoire (a NUL in text), untranslatable_character (\u0000 in JSONB)
_NUL_SQLSTATES = frozenset({"22021", "22P05"})


def _is_nul_rejection(exc: DBAPIError) -> bool:
    """PostgreSQL refusing a NUL character in a text or JSONB value."""
    return getattr(exc.orig, "sqlstate", None) in _NUL_SQLSTATES


# PostgreSQL's classes of a server that cannot serve now, whatever the statement:
# 08 connection exception, 53 insufficient resources (too many connections), 57P
# shutting down or starting up ("the database system is starting up", 57P03).
_OUTAGE_SQLSTATE_PREFIXES = ("08", "53", "57P")

# SQLite's primary result codes of a database that cannot serve now: busy or
# locked past the timeout, out of memory, read-only, I/O error, disk full, cannot
# open. Any other SQLite error (a statement too big for its limits, a bug) is
# about the statement, and retrying it later would fail the same way.
_SQLITE_OUTAGE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14})
_SQLITE_TOOBIG = 18
# SQLite's messages (code SQLITE_ERROR) and PostgreSQL's class 54 (program limit
# exceeded) for a statement the request made too big: a client's fault, 400.
_TOO_COMPLEX_MESSAGES = (
    "too many sql variables",
    "expression tree is too large",
    "parser stack overflow",
    "too many terms",
    "too many arguments",
    "too many columns",
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve now (503), not that the request is wrong.

    The same classes the handlers above answer with 503, for code that meets a
    database error outside a request (the group-commit writer).
    """
    if isinstance(exc, PoolTimeout | OSError):  # OSError includes ConnectionError
        return True
    return isinstance(exc, DBAPIError) and _looks_like_outage(exc)


def note_outage(exc: BaseException) -> None:
    """Logs an outage met outside a request, as rarely as those met in one."""
    _outage_log.warn(exc)


def _looks_like_outage(exc: DBAPIError) -> bool:
    """Whether the database failed (503, try again) rather than the statement."""
    if exc.connection_invalidated:
        return True
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return (sqlite_code & 0xFF) in _SQLITE_OUTAGE_CODES
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATE_PREFIXES):
        return True
    if isinstance(exc, OperationalError):
        # PostgreSQL's drivers raise it for a lost server or a cancelled statement.
        return True
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    return any(
        word in text
        for word in ("connection", "cannotconnectnow", "shutdown", "database is locked", "terminat")
    )


def _is_too_complex(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlite_errorcode", None) == _SQLITE_TOOBIG:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("54"):
        return True
    text = str(exc.orig).lower()
    return any(message in text for message in _TOO_COMPLEX_MESSAGES)
