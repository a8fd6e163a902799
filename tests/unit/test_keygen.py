import zlib

from hypothesis import given
from hypothesis import strategies as st

from agentmark_gateway.api_keys import keygen


def test_generated_keys_have_the_documented_shape():
    key = keygen.generate()
    assert key.startswith("sk_agentmark_")
    assert len(key) == len("sk_agentmark_") + 32 + 6
    assert keygen.is_well_formed(key)


def test_checksum_is_crc32_of_the_random_part_in_base62():
    key = keygen.generate()
    random_part = key[len("sk_agentmark_") : -6]
    number = zlib.crc32(random_part.encode())
    digits = []
    for _ in range(6):
        number, digit = divmod(number, 62)
        digits.append(keygen.ALPHABET[digit])
    assert key[-6:] == "".join(reversed(digits))


def test_a_single_typo_breaks_the_checksum():
    key = keygen.generate()
    position = len("sk_agentmark_") + 5
    replacement = "A" if key[position] != "A" else "B"
    typo = key[:position] + replacement + key[position + 1 :]
    assert not keygen.is_well_formed(typo)


def test_keys_are_unique():
    assert len({keygen.generate() for _ in range(1000)}) == 1000


@given(st.text(max_size=200))
def test_arbitrary_text_is_never_taken_for_a_key(text):
    # Made-up strings almost never pass; when they do, they must really have the shape.
    if keygen.is_well_formed(text):
        body = text[len("sk_agentmark_") :]
        assert keygen.checksum(body[:32]) == body[32:]


def test_digest_depends_on_the_pepper_and_is_hex():
    key = keygen.generate()
    first = keygen.digest(key, b"one")
    assert first != keygen.digest(key, b"two")
    assert len(first) == 64 and int(first, 16) >= 0


def test_display_prefix_shows_first_and_last_four_only():
    key = keygen.generate()
    shown = keygen.display_prefix(key)
    body = key[len("sk_agentmark_") :]
    assert shown == f"sk_agentmark_{body[:4]}…{body[-4:]}"
    assert body[4:-4] not in shown
