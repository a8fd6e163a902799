"""Domain errors and the one envelope they become: ``{"error": {"code", "message"}}``.

Services raise these; nothing else in the code builds an error body.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 400
    code = "bad_request"
    message = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(ApiError):
    status_code = 400
    code = "invalid_request_body"
    message = "Invalid request body"


class InvalidPermissions(ApiError):
    status_code = 400
    code = "invalid_permissions"
    message = "Select a role or at least one permission"


class Unauthorized(ApiError):
    """401; without a message, the one answer that tells nothing about why."""

    status_code = 401
    code = "unauthorized"
    message = "Not authorized"


# The 401s that say what is missing, on data and management routes alike.
MISSING_AUTH_HEADER = "Missing auth header"
MISSING_APP_ID = "Missing app id"

# The key check's refusals are returned as values, not raised (api_keys/authenticate.py):
# the gate renders them without unwinding a stack. These few never change, so each is
# made once; whoever raises one raises a copy (``fresh``), never the shared instance.
NOT_AUTHORIZED = Unauthorized()
NO_AUTH_HEADER = Unauthorized(MISSING_AUTH_HEADER)
NO_APP_ID = Unauthorized(MISSING_APP_ID)


def fresh(refusal: ApiError) -> ApiError:
    """A copy of ``refusal`` to raise: a raised exception carries its traceback, which a
    shared instance would keep from one request to the next."""
    return type(refusal)(
        refusal.message, code=refusal.code, headers=refusal.headers, **refusal.extra
    )


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"
    message = "Forbidden"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"
    message = "Not found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"
    message = "Conflict"


class RequestTimeout(ApiError):
    status_code = 408
    code = "request_timeout"
    message = "The request was not sent in time"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"
    message = "Request body is too large"


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"
    message = "Unsupported content type"


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests"


class NotImplementedHere(ApiError):
    """A route of AgentMark's API that only AgentMark Cloud can serve."""

    status_code = 501
    code = "not_implemented"
    message = "Not available on this gateway"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "service_unavailable"
    message = "The database is unavailable; try again shortly"


def missing_permission(permission: str) -> Forbidden:
    return Forbidden(
        f"Forbidden: missing required permission '{permission}'",
        required_permission=permission,
    )
