"""The queryable columns derived from span attributes, and the cost they imply."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmark_gateway.pricing import _without_provider, price_table
from agentmark_gateway.traces.derive import row_of, span_type, tags_of
from agentmark_gateway.traces.otlp import decode_json
from tests.fixtures.otlp import payloads, sdk
from tests.fixtures.otlp.spans import decoded_span

PRICES = price_table()


def _row(attributes: dict, resource: dict | None = None) -> dict:
    return row_of(decoded_span(attributes, resource), app_id="app_x", prices=PRICES)


def test_the_sdks_trace_context_attributes_become_columns():
    with sdk.recording() as exporter:
        sdk.run_agent(session_id="s-1", user_id="u-1", tags=("a", "b"))
    spans = decode_json(sdk.as_sdk_json(exporter.get_finished_spans()))
    rows = {row["name"]: row for row in (row_of(s, app_id="app_x", prices=PRICES) for s in spans)}

    root = rows["qa-agent"]
    assert root["trace_name"] == "qa-agent"
    assert root["session_id"] == "s-1"
    assert root["session_name"] == "Support chat"
    assert root["user_id"] == "u-1"
    assert root["prompt_name"] == "qa.prompt.mdx"
    assert root["tags"] == ["a", "b"]
    assert root["duration_ms"] > 0

    chat = rows["chat"]
    assert chat["span_type"] == "llm"
    assert chat["model"] == "gpt-4o-mini"
    assert (chat["input_tokens"], chat["output_tokens"]) == (120, 30)
    assert chat["cost"] == pytest.approx((120 * 0.15 + 30 * 0.6) / 1_000_000)
    assert chat["input"] == '{"prompt": "What is the capital of France?"}'
    assert chat["output"] == '"Paris"'  # the SDK serializes return values as JSON
    assert chat["tags"] == ["a", "b"]  # with_agentmark stamps every span

    assert rows["search"]["span_type"] == "tool"
    assert rows["search"]["cost"] is None


def test_the_kitchen_sink_derives_from_resource_gen_ai_and_openinference_keys():
    spans = decode_json(json.dumps(payloads.load("kitchen_sink.json")).encode())
    root, chat, tool = (row_of(s, app_id="app_x", prices=PRICES) for s in spans)
    assert root["user_id"] == "user-from-resource"
    assert root["tags"] == ["beta", "eu"]
    assert root["input"] == '{"city":"Lisbon"}'
    assert chat["span_type"] == "llm"  # gen_ai.system marks a model call
    assert chat["model"] == "gpt-4o"  # the requested model
    assert (chat["input_tokens"], chat["output_tokens"]) == (2000, 1000)
    assert chat["cost"] == pytest.approx(0.015)
    assert chat["input"] == "Plan 3 days in Lisbon"
    assert tool["cost"] == 0.5  # a reported cost wins


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.usage.input_tokens": "lots", "gen_ai.request.model": ["gpt-4o"]},
        {"gen_ai.usage.input_tokens": -5, "gen_ai.usage.output_tokens": True},
        {"gen_ai.usage.input_tokens": {"n": 1}, "agentmark.cost": "free"},
        {"agentmark.tags": 7, "agentmark.session_id": {"id": 1}, "agentmark.user_id": None},
        {"agentmark.tags": "[not json", "agentmark.span.kind": 3},
        {"gen_ai.usage.input_tokens": float("nan"), "agentmark.cost": -1},
    ],
)
def test_attributes_of_unexpected_types_are_ignored_not_fatal(attributes):
    row = _row(attributes)
    assert row["input_tokens"] >= 0 and row["output_tokens"] >= 0
    assert row["cost"] is None
    assert isinstance(row["tags"], list)


def test_token_counts_are_capped_to_the_column():
    row = _row({"gen_ai.usage.input_tokens": 10**15, "gen_ai.usage.output_tokens": "12"})
    assert row["input_tokens"] == 2**31 - 1
    assert row["output_tokens"] == 12


def test_long_identifiers_are_cut_to_their_columns():
    row = _row({"agentmark.session_id": "s" * 1000, "gen_ai.request.model": "m" * 1000})
    assert len(row["session_id"]) == 255
    assert len(row["model"]) == 255


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        ('["prod","eu"]', ["prod", "eu"]),
        (["prod", "prod", 3], ["prod", "3"]),
        ("solo", ["solo"]),
        ("", []),
        ("[1, null, true]", ["1"]),
        (None, []),
    ],
)
def test_tags_are_read_from_a_json_string_an_array_or_a_single_word(value, tags):
    assert tags_of(value) == tags


@pytest.mark.parametrize(
    ("attributes", "kind"),
    [
        ({"agentmark.span.kind": "Agent"}, "agent"),
        ({"openinference.span.kind": "RETRIEVER"}, "retrieval"),
        ({"openinference.span.kind": "RERANKER"}, "reranker"),
        ({"gen_ai.operation.name": "chat"}, "llm"),
        ({"http.method": "GET"}, None),
    ],
)
def test_the_span_kind_comes_from_agentmark_then_openinference_then_gen_ai(attributes, kind):
    assert span_type(attributes) == kind


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("GPT-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4.1-nano", "gpt-4.1-nano"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("models/gemini-1.5-flash", "gemini-1.5-flash"),
    ],
)
def test_dated_and_provider_prefixed_model_names_are_priced_as_their_family(model, family):
    assert PRICES.lookup(model) == PRICES.prices[family]


@pytest.mark.parametrize("model", ["gpt-4.5-preview", "my-own-model", "gpt-4oz", "", None])
def test_unknown_models_have_no_price(model):
    assert PRICES.lookup(model) is None
    assert PRICES.cost(model, 100, 100) is None


def test_settings_prices_override_and_extend_the_shipped_table():
    table = price_table(
        {"gpt-4o": {"input": 1.0, "output": 2.0}, "house-model": {"input": 10, "output": 0}}
    )
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("house-model-v2", 500_000, 9) == pytest.approx(5.0)
    assert price_table().cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.5)


def test_no_tokens_means_no_cost():
    assert PRICES.cost("gpt-4o", 0, 0) is None


def _family_by_scan(model: str) -> str | None:
    """The rule as written: the exact name, then the longest known name followed by - @ or :."""
    name = model.strip().lower()
    if name in PRICES.prices:
        return name
    name = _without_provider(name)
    if name in PRICES.prices:
        return name
    for known in sorted(PRICES.prices, key=len, reverse=True):
        if name.startswith(known) and name[len(known) : len(known) + 1] in ("-", "@", ":"):
            return known
    return None


@settings(max_examples=300, deadline=None)
@given(
    known=st.sampled_from(sorted(PRICES.prices)),
    rest=st.text(alphabet="-@:.0123456789abcmnoz", max_size=16),
)
def test_a_suffixed_name_is_priced_as_the_longest_family_it_extends(known, rest):
    family = _family_by_scan(known + rest)
    expected = None if family is None else PRICES.prices[family]
    assert PRICES.lookup(known + rest) is expected


@pytest.mark.parametrize(
    ("attributes", "run_id"),
    [
        ({"ai.telemetry.metadata.dataset_run_id": "ai"}, "ai"),
        (
            {
                "agentmark.metadata.dataset_run_id": "meta",
                "ai.telemetry.metadata.dataset_run_id": "ai",
            },
            "meta",
        ),
        ({"agentmark.dataset_run_id": "sdk", "agentmark.metadata.dataset_run_id": "meta"}, "sdk"),
    ],
)
def test_a_runs_marks_are_read_in_each_form_the_sdks_first(attributes, run_id):
    prefix = next(iter(attributes)).removesuffix("dataset_run_id")
    marks = {
        f"{prefix}dataset_run_name": "name",
        f"{prefix}dataset_path": "data.jsonl",
        f"{prefix}prompt_name": "p.prompt.mdx",
        "ai.telemetry.metadata.commit_sha": "c0ffee",
    }
    row = _row({**marks, **attributes})
    assert row["dataset_run_id"] == run_id
    assert (row["dataset_run_name"], row["dataset_path"]) == ("name", "data.jsonl")
    assert (row["prompt_name"], row["commit_sha"]) == ("p.prompt.mdx", "c0ffee")
