"""row_of's one-pass attribute scan picks what the key-by-key ``first`` look-ups pick.

The reference below is the plain reading of the rules: for each column, the first
of its keys with a non-empty value, the span's own attributes over its resource's
(an empty span attribute still hides the resource's value for that key).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentmark_gateway.pricing import price_table
from agentmark_gateway.traces import derive
from agentmark_gateway.traces.otlp import OtlpSpan
from tests.fixtures.otlp.spans import decoded_span

SPAN_ONLY = {
    "model": derive.MODEL_KEYS,
    "input_tokens": derive.INPUT_TOKEN_KEYS,
    "output_tokens": derive.OUTPUT_TOKEN_KEYS,
    "prompt_name": derive.PROMPT_NAME_KEYS,
    "input": derive.INPUT_KEYS,
    "output": derive.OUTPUT_KEYS,
}
MERGED = {
    "trace_name": derive.TRACE_NAME_KEYS,
    "session_id": derive.SESSION_ID_KEYS,
    "session_name": derive.SESSION_NAME_KEYS,
    "user_id": derive.USER_ID_KEYS,
    "dataset_run_id": derive.DATASET_RUN_KEYS,
}
KEYS = sorted(
    {key for keys in (*SPAN_ONLY.values(), *MERGED.values()) for key in keys}
    | {"agentmark.tags", "agentmark.cost", "gen_ai.usage.cost", "service.name", "other"}
)
VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["a", "gpt-4o-mini", " spaced ", "12", '["x", "y"]']),
    st.integers(-5, 10**6),
    st.booleans(),
    st.lists(st.sampled_from(["t1", "t2"]), max_size=3),
)
ATTRIBUTES = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=12)


def _reference(span: OtlpSpan) -> dict[str, Any]:
    own = span.attributes
    merged = {**span.resource_attributes, **own}
    picked = {field: derive.first(own, keys) for field, keys in SPAN_ONLY.items()}
    picked.update({field: derive.first(merged, keys) for field, keys in MERGED.items()})
    picked["tags"] = derive.tags_of(merged.get("agentmark.tags"))
    return picked


@settings(max_examples=300, deadline=None)
@given(attributes=ATTRIBUTES, resource=ATTRIBUTES)
def test_row_of_picks_each_column_as_first_would(attributes, resource):
    span = decoded_span(attributes, resource)
    row = derive.row_of(span, app_id="app", prices=price_table())
    expected = _reference(span)

    assert row["tags"] == expected["tags"]
    assert row["model"] == derive._label(expected["model"], 255)
    assert row["input_tokens"] == derive._count(expected["input_tokens"])
    assert row["output_tokens"] == derive._count(expected["output_tokens"])
    assert row["input"] == derive.text_of(expected["input"])
    assert row["output"] == derive.text_of(expected["output"])
    assert row["prompt_name"] == derive._label(expected["prompt_name"])
    for field in ("trace_name", "session_name"):
        assert row[field] == derive._label(expected[field])
    for field in ("session_id", "user_id", "dataset_run_id"):
        assert row[field] == derive._label(expected[field], 255)


def test_an_empty_span_attribute_hides_the_resource_value():
    span = decoded_span({"session.id": ""}, {"session.id": "from-resource", "user.id": "u"})
    row = derive.row_of(span, app_id="app", prices=price_table())
    assert row["session_id"] is None
    assert row["user_id"] == "u"


def test_a_resource_never_gives_a_span_its_model_or_tokens():
    resource = {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5}
    row = derive.row_of(decoded_span({}, resource), app_id="app", prices=price_table())
    assert (row["model"], row["input_tokens"], row["cost"]) == (None, 0, None)
