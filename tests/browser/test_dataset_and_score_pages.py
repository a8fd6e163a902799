"""Datasets (the list, a dataset's rows, adding rows from a trace and from a span) and
Scores (aggregates per name, filters, links to traces) in Chromium, with traces and
scores sent by the published AgentMark SDK to the live gateway.

Each page also passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from agentmark_sdk import AgentMarkSDK, JsonOtlpSpanExporter, SpanKind, observe
from opentelemetry.sdk.trace.export import SpanExportResult
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import LiveGateway, SignedIn, assert_accessible, screenshot
from tests.browser.test_data_pages import make_key
from tests.fixtures.otlp import sdk

pytestmark = pytest.mark.browser

LONG_QUESTION = "Summarise our refund policy for a customer who " + "asks again and again " * 12


def send_answer(gateway: LiveGateway, key: str, app_id: str, question: str) -> str:
    """A question answered by a small pipeline the SDK traces (the root span records the
    question and the answer); its trace id."""

    @observe(kind=SpanKind.TOOL)
    def lookup(query: str) -> dict[str, Any]:
        return {"documents": [query[:20]]}

    @observe(name="answer-question")
    def answer(question: str) -> str:
        lookup(question)
        return "Paris" if "France" in question else "Refunds take five days."

    with sdk.recording(app_id) as recorder:
        answer(question)
    spans = recorder.get_finished_spans()
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{gateway.base_url}/v1/traces",
        headers={"Authorization": key, "X-Agentmark-App-Id": app_id},
    )
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    return format(spans[0].context.trace_id, "032x")


def add_to_dataset(page: Page, which: str, name: str) -> Locator:
    """Open the trace's (or the span's) "Add to dataset" form and send it; the flash
    message it answers with."""
    details = page.locator("details.add-to-dataset", has_text=f"Add {which} to dataset")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    details.get_by_label("Dataset").fill(name)
    details.get_by_role("button", name="Add row").click()
    return details.locator(".flash")


def send_scored_answers(gateway: LiveGateway, key: str, app_id: str) -> tuple[str, str]:
    """Two answers and three scores, as an app and its evaluators send them; the two
    trace ids (a short question, and a long one)."""
    paris = send_answer(gateway, key, app_id, "What is the capital of France?")
    refunds = send_answer(gateway, key, app_id, LONG_QUESTION)
    client = AgentMarkSDK(api_key=key, app_id=app_id, base_url=gateway.base_url)
    client.score_sync(resource_id=paris, name="helpfulness", score=0.9, label="good")
    client.score_sync(resource_id=refunds, name="helpfulness", score=0.3, label="bad")
    client.score_sync(
        resource_id=paris, name="correct", score=1, label="true", reason="Matches the atlas"
    )
    return paris, refunds


def test_rows_added_from_a_trace_and_a_span_show_in_the_dataset_and_its_list(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    key = make_key(gateway, owner.app_id)
    paris, refunds = send_scored_answers(gateway, key, owner.app_id)
    # A dataset a CI job pushed, beside the one made below.
    pushed = httpx.post(
        f"{gateway.base_url}/v1/datasets/smoke/rows",
        json={"input": {"question": "ping"}, "expected_output": "pong"},
        headers={"Authorization": key, "X-Agentmark-App-Id": owner.app_id},
        timeout=10,
    )
    assert pushed.status_code == 201, pushed.text
    traces_url = f"/apps/{owner.app_id}/traces"

    # The trace's root span becomes row 1; the flash links to the dataset.
    page.goto(f"{traces_url}/{paris}")
    flash = add_to_dataset(page, "trace", "evals/qa")
    expect(flash).to_contain_text("Row 1 added to evals/qa from the trace")
    # The form offers the app's datasets by name.
    expect(page.locator("#dataset-names option")).to_have_count(1)
    assert page.locator("#dataset-names option").get_attribute("value") == "smoke"
    assert_accessible(page)
    screenshot(page, "add-to-dataset")

    # One span of it becomes row 2.
    page.locator("[data-span-link]", has_text="lookup").click()
    expect(page.locator("#span-detail h2")).to_have_text("lookup")
    flash = add_to_dataset(page, "span", "evals/qa")
    expect(flash).to_contain_text("Row 2 added to evals/qa from the span")
    # A name the rules refuse is answered beside the form; nothing is added.
    refused = add_to_dataset(page, "span", "evals/../qa")
    expect(refused).to_contain_text("must not contain '.' or '..' segments")

    # A second trace, with a long question, is row 3.
    page.goto(f"{traces_url}/{refunds}")
    flash = add_to_dataset(page, "trace", "evals/qa")
    expect(flash).to_contain_text("Row 3 added to evals/qa")
    flash.get_by_role("link", name="evals/qa").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("evals/qa")
    rows = page.locator(".dataset-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("What is the capital of France?")
    expect(rows.nth(0)).to_contain_text("Paris")
    expect(rows.nth(1)).to_contain_text('"query": "What is the capital of France?"')
    expect(rows.nth(1)).to_contain_text(paris)  # where the row came from
    long_value = rows.nth(2).locator("details.long-value").first
    expect(long_value.locator("summary")).to_contain_text("…")
    expect(long_value.locator("pre")).to_be_hidden()
    long_value.locator("summary").click()
    expect(long_value.locator("pre")).to_contain_text("asks again and again asks again")
    assert_accessible(page)
    screenshot(page, "dataset", full_page=True)

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Datasets").click()
    listed = page.locator("tbody tr")
    expect(listed).to_have_count(2)
    expect(listed.nth(0)).to_contain_text("evals/qa")
    expect(listed.nth(0)).to_contain_text("3")
    expect(listed.nth(1)).to_contain_text("smoke")
    assert_accessible(page)
    screenshot(page, "datasets")


def test_scores_add_up_per_name_filter_and_link_to_their_traces(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    key = make_key(gateway, owner.app_id)
    _paris, refunds = send_scored_answers(gateway, key, owner.app_id)
    traces_url = f"/apps/{owner.app_id}/traces"

    page.goto(traces_url)
    page.get_by_role("navigation", name="Sections of").get_by_role("link", name="Scores").click()
    by_name = page.locator(".score-aggregates tbody tr")
    expect(by_name).to_have_count(2)
    expect(by_name.nth(1)).to_contain_text("helpfulness")
    expect(by_name.nth(1).locator("td").nth(0)).to_have_text("2")
    expect(by_name.nth(1).locator("td").nth(1)).to_have_text("0.6")
    expect(by_name.nth(1)).to_contain_text("good 1")
    listed = page.locator(".scores-list tbody tr")
    expect(listed).to_have_count(3)
    expect(listed.first).to_contain_text("correct")  # newest first
    assert_accessible(page)
    screenshot(page, "scores", full_page=True)

    page.get_by_label("Name", exact=True).select_option("helpfulness")
    page.get_by_role("button", name="Filter").click()
    expect(listed).to_have_count(2)
    expect(by_name).to_have_count(1)
    page.get_by_label("Trace or span id").fill(refunds)
    page.get_by_role("button", name="Filter").click()
    expect(listed).to_have_count(1)
    expect(listed.first).to_contain_text("bad")
    listed.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"{traces_url}/{refunds}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("answer-question")


def test_a_read_member_sees_datasets_and_scores_but_no_way_to_add_rows(
    page: Page, gateway: LiveGateway, context: Any
) -> None:
    from tests.browser.support import sign_in_as

    app_id = gateway.create_app()
    key = make_key(gateway, app_id)
    trace_id = send_answer(gateway, key, app_id, "What is the capital of France?")
    AgentMarkSDK(api_key=key, app_id=app_id, base_url=gateway.base_url).score_sync(
        resource_id=trace_id, name="helpfulness", score=1
    )
    sign_in_as(gateway, context, "read", app_id)

    page.goto(f"/apps/{app_id}/traces/{trace_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("answer-question")
    expect(page.locator("details.add-to-dataset")).to_have_count(0)
    page.locator("[data-span-link]", has_text="lookup").click()
    expect(page.locator("#span-detail h2")).to_have_text("lookup")
    expect(page.locator("details.add-to-dataset")).to_have_count(0)

    page.goto(f"/apps/{app_id}/scores")
    expect(page.locator(".scores-list tbody tr")).to_have_count(1)
    page.goto(f"/apps/{app_id}/datasets")
    expect(page.get_by_role("heading", name="No datasets yet")).to_be_visible()
    assert_accessible(page)
