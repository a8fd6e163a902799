"""Key values: ``sk_agentmark_`` + 32 random base62 + 6 base62 of CRC32(random part).

The checksum (GitHub's token design) lets the gateway, or a secret scanner,
refuse a mistyped or made-up key without any lookup. Only an HMAC digest of a
key is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

PREFIX = "sk_agentmark_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ALPHABET_SET = frozenset(ALPHABET)


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def generate() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + checksum(random_part)


def is_well_formed(value: str) -> bool:
    """Shape and checksum only: no lookup, constant work for any input."""
    if len(value) != KEY_LENGTH or not value.startswith(PREFIX):
        return False
    body = value[len(PREFIX) :]
    if not _ALPHABET_SET.issuperset(body):
        return False
    random_part, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    return hmac.compare_digest(checksum(random_part), check)


def digest(value: str, pepper: bytes) -> str:
    """HMAC-SHA256(pepper, key), hex: the only form of a key that is stored."""
    return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()


def display_prefix(value: str) -> str:
    """What lists show: ``sk_agentmark_`` + first 4 + ``…`` + last 4."""
    body = value[len(PREFIX) :]
    return f"{PREFIX}{body[:4]}…{body[-4:]}"
