"""Experiments in Chromium: the runs of an experiment, a run's rows, and two runs side
by side with the regressed rows marked, on runs sent by the published AgentMark SDK
(its span options for dataset runs, its exporter and its score call).

Each page also passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from agentmark_sdk import AgentMarkSDK, JsonOtlpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from playwright.sync_api import Page, expect

from tests.browser.support import LiveGateway, SignedIn, assert_accessible, screenshot
from tests.browser.test_data_pages import make_key
from tests.fixtures.otlp import sdk

pytestmark = pytest.mark.browser

LONG_QUESTION = "Explain, step by step, " + "why the sum of two odd numbers is even; " * 6


@dataclass(frozen=True)
class Row:
    question: str
    expected: str
    answers: tuple[str, str]  # the base run's answer, the new run's
    scores: tuple[float, float]  # "exact" in each run


ROWS = (
    Row("5 + 7", "12", ("12", "12"), (1, 1)),
    Row("2 * 3", "6", ("6", "5"), (1, 0)),  # got worse: regressed at any tolerance
    Row(LONG_QUESTION, "Odd plus odd is even.", ("Odd plus odd is even.", ""), (0.8, 0.7)),
)


def send_run(gateway: LiveGateway, key: str, app_id: str, which: int) -> str:
    """One run of ROWS as a Python app records it: a root span per row with the
    run's marks, the model call under it, then each row's score; returns the run id."""
    from agentmark_sdk import SpanKind, SpanOptions, observe, span_context_sync

    run_id = str(uuid.uuid4())

    @observe(kind=SpanKind.LLM, name="answer")
    def answer(question: str, text: str) -> str:
        from opentelemetry import trace

        current = trace.get_current_span()  # what a model instrumentation adds
        current.set_attribute("gen_ai.system", "openai")
        current.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        current.set_attribute("gen_ai.usage.input_tokens", 60)
        current.set_attribute("gen_ai.usage.output_tokens", 8)
        if not text:
            raise TimeoutError("model timed out")
        return text

    trace_ids = []
    with sdk.recording(app_id) as recorder:
        for index, row in enumerate(ROWS):
            options = SpanOptions(
                name="math-eval",
                dataset_run_id=run_id,
                dataset_run_name="math-eval",
                dataset_item_name=f"row-{index}",
                dataset_input=json.dumps({"question": row.question}),
                dataset_expected_output=json.dumps(row.expected),
                dataset_path="math.dataset.jsonl",
            )
            with span_context_sync(options) as ctx:
                try:
                    answer(row.question, row.answers[which])
                except TimeoutError:
                    pass  # the row failed; the run goes on
                trace_ids.append(ctx.trace_id)
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{gateway.base_url}/v1/traces",
        headers={"Authorization": key, "X-Agentmark-App-Id": app_id},
    )
    assert exporter.export(recorder.get_finished_spans()) is SpanExportResult.SUCCESS
    client = AgentMarkSDK(api_key=key, app_id=app_id, base_url=gateway.base_url)
    for trace_id, row in zip(trace_ids, ROWS, strict=True):
        client.score_sync(resource_id=trace_id, name="exact", score=row.scores[which])
    return run_id


def test_runs_their_rows_and_a_comparison_that_marks_what_regressed(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    page.goto(f"/apps/{owner.app_id}/experiments")
    expect(page.get_by_role("heading", level=2)).to_have_text("No experiment runs yet")
    assert_accessible(page)

    key = make_key(gateway, owner.app_id)
    base = send_run(gateway, key, owner.app_id, 0)
    new = send_run(gateway, key, owner.app_id, 1)

    page.goto(f"/apps/{owner.app_id}/traces")
    nav = page.get_by_role("navigation", name="Sections of")
    nav.get_by_role("link", name="Experiments").click()
    experiment = page.locator("section.experiment")
    expect(experiment.get_by_role("heading", level=2)).to_have_text("math-eval")
    runs = experiment.locator("tbody tr")
    expect(runs).to_have_count(2)
    expect(runs.first).to_contain_text(f"Run {new[:8]}")  # newest first
    expect(runs.first).to_contain_text("exact 0.567")  # (1 + 0 + 0.7) / 3
    expect(runs.last).to_contain_text(f"Run {base[:8]}")
    assert_accessible(page)
    screenshot(page, "experiments")

    runs.first.get_by_role("link", name=f"Run {new[:8]}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("math-eval")
    rows = page.locator(".run-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text('{"question": "5 + 7"}')
    expect(rows.nth(1)).to_contain_text('"6"')
    expect(rows.nth(2)).to_contain_text("model timed out")
    long_input = rows.nth(2).locator("details").first
    expect(long_input.locator("pre")).not_to_be_visible()
    long_input.locator("summary").click()  # a long value opens in full
    expect(long_input.locator("pre")).to_contain_text(LONG_QUESTION.strip())
    assert_accessible(page)
    page.evaluate("window.scrollTo(0, 0)")  # the opened value scrolled the page
    screenshot(page, "experiment-run", full_page=True)

    # The row's trace names its run, and leads back to it.
    rows.nth(1).get_by_role("link", name="row-1").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("math-eval")
    page.get_by_role("link", name=new).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("math-eval")

    # The picker offers the run before this one as the base.
    expect(page.get_by_label("Base run")).to_have_value(base)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare runs")
    regressed = page.locator(".compare-table tbody tr.regressed")
    expect(regressed).to_have_count(2)  # 1 → 0 and 0.8 → 0.7, at a tolerance of 0
    expect(page.locator(".compare-outcome")).to_contain_text("2 of 3 rows regressed")
    expect(regressed.first).to_contain_text("Regressed")  # said, not only coloured
    expect(regressed.first).to_contain_text("1 → 0")
    # A tolerance of 20%, as a gate's regressionTolerance: 0.8 → 0.7 fell by 12.5% only.
    page.get_by_label("Tolerance").fill("0.2")
    page.get_by_role("button", name="Compare").click()
    expect(regressed).to_have_count(1)
    expect(regressed).to_contain_text("row-1")
    expect(page.locator(".compare-outcome")).to_contain_text("1 of 3 rows regressed")
    assert_accessible(page)
    screenshot(page, "experiment-compare", full_page=True)
