"""Why a data request got 401 or 429: ``Authenticator.authenticate``, one function.

The checks run in the order of a key's life, and the first that fails answers:

1. **the headers**: one ``Authorization``, the raw key or ``Bearer <key>`` (401
   "Missing auth header" when absent or empty, "Not authorized" when repeated),
   and one ``X-Agentmark-App-Id`` (401 "Missing app id");
2. **the value's shape and checksum**: a typo is refused without a lookup (401);
3. **the key behind it**: this process's caches, else the database by HMAC
   digest (``KeyLookup``; unknown or deleted: 401);
4. **the key's own bounds**: not expired, of the app the header names, the
   client's address in its allowlist (401, the same answer as an unknown key, so
   nothing tells a caller elsewhere that the key itself is good);
5. **the rate limits** of the key and of its app (429 with ``Retry-After``).

Then the route's permissions (403): ``permissions.enforce.first_missing``.

A refusal is returned, not raised (an ``ApiError`` as a value): the gate answers a
made-up key for the cost of the decision, without unwinding frames; ``requires()``
raises it (a copy: ``errors.fresh``) for the framework's handlers.

Both entrances call this: ``KeyGate`` (permissions/gate.py) in front of the
framework for the SDKs' hot routes, and ``requires()`` for every other data
route. Management routes take a user session instead (auth/deps.py), which
reads the ``Authorization`` header with the same ``parse_authorization``.
"""

from __future__ import annotations

import time

from starlette.types import Scope

from agentmark_gateway.api_keys.last_used import LastUsedRecorder
from agentmark_gateway.api_keys.verify import KeyLookup, VerifiedKey
from agentmark_gateway.errors import (
    NO_APP_ID,
    NO_AUTH_HEADER,
    NOT_AUTHORIZED,
    ApiError,
    RateLimited,
    fresh,
)
from agentmark_gateway.netaccess import Address, ClientAddressResolver
from agentmark_gateway.ratelimit import SCOPE_KEY, RateLimiter

FORWARDED_FOR = b"x-forwarded-for"
# Where the key a request named is left once found, accepted or not, so that its
# outcome is counted for it (usage/counter.py). Never read as proof of anything:
# an accepted key is ``permissions.enforce.VERIFIED_KEY``.
KEY_SEEN = "agentmark.key_seen"


def credential(header: str | None) -> str | None:
    """The credential in ``Authorization: <value>`` or ``Authorization: Bearer <value>``;
    None when the header is absent or empty."""
    if not header:
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value


def parse_authorization(header: str | None) -> str:
    """``credential``, raising the 401 when there is none (the management side's use)."""
    value = credential(header)
    if value is None:
        raise fresh(NO_AUTH_HEADER)
    return value


def read_credentials(authorizations: list[str], app_ids: list[str]) -> tuple[str, str] | ApiError:
    """Step 1: the raw key and the app id, from every line of the two headers.

    More than one of either is refused: which one counts would depend on who
    reads them (a proxy may take the last).
    """
    if len(authorizations) > 1:
        return NOT_AUTHORIZED
    if len(app_ids) > 1:
        return NO_APP_ID
    raw = credential(authorizations[0] if authorizations else None)
    if raw is None:
        return NO_AUTH_HEADER
    if not app_ids or not app_ids[0]:
        return NO_APP_ID
    return raw, app_ids[0]


class Authenticator:
    """From a data request's headers and client address to its key, or a refusal."""

    def __init__(
        self,
        keys: KeyLookup,
        limiter: RateLimiter,
        client_addresses: ClientAddressResolver,
        last_used: LastUsedRecorder,
    ) -> None:
        self.keys = keys
        self.limiter = limiter
        self.client_addresses = client_addresses
        self.last_used = last_used

    async def authenticate(
        self, authorizations: list[str], app_ids: list[str], scope: Scope
    ) -> VerifiedKey | ApiError:
        """The request's key, or its refusal (401, 429). ``authorizations`` and
        ``app_ids`` are every line of the ``Authorization`` and ``X-Agentmark-App-Id``
        headers."""
        credentials = read_credentials(authorizations, app_ids)  # 1
        if isinstance(credentials, ApiError):
            return credentials
        raw, app_id = credentials
        key = self.keys.cached(raw)  # 2, and 3 from memory
        if key is None:
            key = await self.keys.load(raw)  # 3 from the database
        if isinstance(key, ApiError):
            return key
        return self._admit(key, app_id, scope)  # 4 and 5

    def authenticate_known(
        self, authorizations: list[str], app_ids: list[str], scope: Scope
    ) -> VerifiedKey | ApiError | None:
        """``authenticate`` when this process can decide alone; None when the
        database must be asked. Synchronous: a cached key, the usual case, costs
        no coroutine."""
        credentials = read_credentials(authorizations, app_ids)
        if isinstance(credentials, ApiError):
            return credentials
        raw, app_id = credentials
        key = self.keys.cached(raw)
        if key is None or isinstance(key, ApiError):
            return key
        return self._admit(key, app_id, scope)

    def _admit(self, key: VerifiedKey, app_id: str, scope: Scope) -> VerifiedKey | ApiError:
        """Steps 4 and 5 for a key found, then its use recorded (last used)."""
        scope[KEY_SEEN] = key
        if key.expires_at is not None and key.expires_at <= time.time():
            return NOT_AUTHORIZED
        if key.app_id != app_id:
            return NOT_AUTHORIZED
        # Before the rate limits: a refused address never reaches their counts.
        if key.allowlist is not None and not key.allowlist.allows(self.client_address(scope)):
            return NOT_AUTHORIZED
        self.last_used.record(key.id)
        decision = self.limiter.check(key)
        if decision is not None:
            # RateLimitHeadersMiddleware (or KeyGate) copies its headers into the answer.
            scope[SCOPE_KEY] = decision
            if not decision.allowed:
                return RateLimited(
                    "Rate limit exceeded; retry after the window resets",
                    headers=decision.headers(),
                )
        return key

    def client_address(self, scope: Scope) -> Address | None:
        """The socket peer, or the client a trusted proxy names in X-Forwarded-For."""
        client = scope.get("client")
        forwarded = [
            value.decode("latin-1") for name, value in scope["headers"] if name == FORWARDED_FOR
        ]
        return self.client_addresses.resolve(client[0] if client else None, forwarded)
