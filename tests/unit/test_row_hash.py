"""hash_row_input is prompt-core's hashRowInput: vectors computed with the real function.

Each hash below was computed by ``hashRowInput(JSON.parse(text))`` of
``@agentmark-ai/prompt-core`` 1.2.3 under Node 20, the way the regression gate
hashes a dataset row's input on the client's side.
"""

from __future__ import annotations

import pytest

from agentmark_gateway.experiments.row_hash import NotJson, hash_row_input, js_number, parse_json

VECTORS = [
    ("{}", "08f44b07b5901a25"),
    ('{"userMessage":"What is 5 + 7?"}', "668e39980cde2c17"),
    ('{"b":2,"a":1}', "a0ebc03bdc71de7b"),
    ('{"q":"h\\u00e9llo"}', "6f4680a244082bb0"),
    ('{"n":1e21}', "188d2a9a0b56f807"),
    ('{"n":1.5e-7}', "9ab20674ac57590e"),
    ('{"n":123456789012345678901234}', "a1302b713e4f2a0b"),
    ('{"s":"\\ud800x"}', "460e1c38437bc703"),
    ('{"ctl":"a\\u0001b\\n\\"\\\\"}', "f0eee9db532c773f"),
    ('{"Z":1,"a":2,"é":3,"😀":4,"\uff01":5}', "35ed71e1fe0e5bc6"),  # U+FF01 sorts last
    ("[1.0, -0.0, 0.000001, 1e-7, 100, 1e300]", "09d152ec91a343b4"),
    ('{"nested":{"list":[true,false,null,{"k":"v"}]}}', "10331de8aae639e3"),
    ("null", "5b9bc4ba528108e4"),
]


@pytest.mark.parametrize(("text", "expected"), VECTORS)
def test_the_hash_matches_prompt_core(text, expected):
    assert hash_row_input(parse_json(text)) == expected


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (-1.5e-10, "-1.5e-10"),
        (123.456, "123.456"),
        (2**53 + 1, "9007199254740992"),
        (10**400, "null"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(number, text):
    assert js_number(number) == text


@pytest.mark.parametrize("text", ["[REDACTED]", "", "NaN", '{"a": Infinity}', "{'a': 1}"])
def test_text_javascript_cannot_parse_is_not_json(text):
    with pytest.raises(NotJson):
        parse_json(text)
