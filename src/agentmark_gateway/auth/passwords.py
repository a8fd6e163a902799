"""argon2id password hashes, with a dummy hash so unknown emails take as long as known ones."""

from __future__ import annotations

from functools import cache

from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Made on first use, not at import: each CLI call would pay for it otherwise.
    return _hasher.hash("not a real password, only here to spend the same time")


MIN_PASSWORD_LENGTH = 8


async def hash_password(password: str) -> str:
    # argon2 spends ~0.1-0.5 s of CPU on purpose: keep it off the event loop.
    return await to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, hashed: str | None) -> bool:
    return await to_thread.run_sync(_verify, password, hashed)


def _verify(password: str, hashed: str | None) -> bool:
    try:
        return _hasher.verify(hashed or _dummy_hash(), password) and hashed is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
