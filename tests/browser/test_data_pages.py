"""Traces, a trace's waterfall, sessions and templates in Chromium, with data sent by
the published AgentMark SDK (its exporter and its score call) to the live gateway.

Each page also passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from agentmark_sdk import AgentMarkSDK, JsonOtlpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from playwright.sync_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import service as keys_service
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.web import trace_pages
from tests.browser.support import (
    PEPPER,
    ROOT,
    LiveGateway,
    SignedIn,
    assert_accessible,
    screenshot,
)
from tests.fixtures.otlp import sdk

pytestmark = pytest.mark.browser


def make_key(gateway: LiveGateway, app_id: str) -> str:
    async def work(session: AsyncSession) -> str:
        new = await keys_service.create_key(
            session,
            actor=CLI_ACTOR,
            pepper=PEPPER.encode(),
            app_id=app_id,
            name="sdk",
            role="full-access",
            permissions=None,
        )
        return new.plaintext

    return gateway.run(work)


def send_agent_run(gateway: LiveGateway, key: str, app_id: str, **options: Any) -> str:
    """One traced agent run, exported by the SDK's own exporter; returns its trace id."""
    with sdk.recording(app_id) as recorder:
        trace_id = sdk.run_agent(**options)
    exporter = JsonOtlpSpanExporter(
        endpoint=f"{gateway.base_url}/v1/traces",
        headers={"Authorization": key, "X-Agentmark-App-Id": app_id},
    )
    assert exporter.export(recorder.get_finished_spans()) is SpanExportResult.SUCCESS
    return trace_id


def test_traces_arrive_in_the_open_list_and_open_as_a_waterfall_with_their_session(
    page: Page, owner: SignedIn, gateway: LiveGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_pages, "REFRESH_SECONDS", 1)
    key = make_key(gateway, owner.app_id)
    traces_url = f"/apps/{owner.app_id}/traces"

    page.goto(traces_url)
    onboarding = page.locator(".setup-lines")
    expect(onboarding).to_contain_text(f"AGENTMARK_APP_ID={owner.app_id}")
    expect(onboarding).to_contain_text(f"AGENTMARK_BASE_URL={gateway.base_url}")
    assert_accessible(page)
    screenshot(page, "traces-empty")

    # Sent while the page is open: the list shows them without a reload.
    first = send_agent_run(gateway, key, owner.app_id, session_id="support-42")
    send_agent_run(
        gateway, key, owner.app_id, session_id="support-42", user_id="ada", fail_tool=True
    )
    client = AgentMarkSDK(api_key=key, app_id=owner.app_id, base_url=gateway.base_url)
    client.score_sync(resource_id=first, name="helpfulness", score=0.8, label="good")
    rows = page.locator(".traces-table tbody tr")
    expect(rows).to_have_count(2, timeout=8000)
    expect(rows.first).to_contain_text("qa-agent")
    expect(rows.first).to_contain_text("ada")
    # The key that sent it, linked to its page.
    sender = rows.first.locator(".trace-key").get_by_role("link", name="sdk")
    expect(sender).to_have_attribute("href", re.compile(r"/settings/api-keys/key_"))
    monkeypatch.setattr(trace_pages, "REFRESH_SECONDS", 5)  # as served: the pages below say so

    page.get_by_label("Scores").select_option("yes")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(2)
    assert_accessible(page)
    screenshot(page, "traces")

    page.locator(f'a[href="{traces_url}/{first}"]').click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("qa-agent")
    waterfall = page.locator(".waterfall tbody tr")
    expect(waterfall).to_have_count(3)
    expect(page.locator(".scores-table")).to_contain_text("helpfulness")
    page.locator("[data-span-link]", has_text="chat").click()
    panel = page.locator("#span-detail")
    expect(panel.get_by_role("heading", level=2)).to_have_text("chat")
    expect(panel).to_contain_text("gpt-4o-mini")
    expect(panel).to_contain_text("Paris")
    current = page.locator("[data-span-link][aria-current]")
    expect(current).to_have_text("chat")
    # The address names the span shown: a reload or a shared link opens the same view.
    expect(page).to_have_url(
        f"{gateway.base_url}{traces_url}/{first}{current.get_attribute('href')}"
    )
    assert_accessible(page)
    page.evaluate("window.scrollTo(0, 0)")  # the swap scrolled the panel into view
    screenshot(page, "trace", full_page=True)

    page.get_by_role("link", name="support-42").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Session")
    expect(page.locator(".timeline li")).to_have_count(2)
    assert_accessible(page)
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Sessions").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("Support chat")
    assert_accessible(page)
    screenshot(page, "sessions")


def test_metrics_chart_the_app_s_requests_with_their_numbers_in_text(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    key = make_key(gateway, owner.app_id)
    send_agent_run(gateway, key, owner.app_id)
    send_agent_run(gateway, key, owner.app_id, fail_tool=True)

    page.goto(f"/apps/{owner.app_id}/traces")
    page.get_by_role("navigation", name="Sections of").get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Metrics")
    page.get_by_role("navigation", name="Range").get_by_role("link", name="24 hours").click()
    expect(page.locator('#range-24h[aria-current="true"]')).to_be_visible()
    # Five charts, each drawn, each with its sentence and its table.
    expect(page.locator(".metric-chart canvas")).to_have_count(5)
    requests = page.locator("#chart-requests")
    expect(requests.locator(".chart-summary")).to_have_text(
        "2 requests in the last 24 hours, 1 of them failed."
    )
    requests.locator(".usage-numbers summary").click()
    # Both runs, in one hour (or two, sent across an hour's turn).
    expect(requests.locator(".usage-numbers tbody td").first).to_have_text(re.compile(r"^[12]$"))
    expect(page.locator('tr[data-model="gpt-4o-mini"] td').first).to_have_text("2")
    assert_accessible(page)
    screenshot(page, "metrics", full_page=True)


def test_published_templates_show_their_front_matter_and_source(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    key = make_key(gateway, owner.app_id)
    built = json.loads((ROOT / "tests/fixtures/agentmark/haiku.prompt.mdx.json").read_text())
    published = httpx.put(
        f"{gateway.base_url}/v1/templates",
        params={"path": "haiku.prompt.mdx"},
        json=built,
        headers={"Authorization": key, "X-Agentmark-App-Id": owner.app_id},
        timeout=10,
    )
    assert published.status_code == 201, published.text

    page.goto(f"/apps/{owner.app_id}/traces")
    page.get_by_role("navigation", name="Sections of").get_by_role("link", name="Templates").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_accessible(page)
    page.get_by_role("link", name="haiku.prompt.mdx").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("haiku")
    expect(page.locator(".source").first).to_contain_text("temperature: 0.9")
    expect(page.locator(".source").last).to_contain_text("Write a haiku about {props.season}.")
    assert_accessible(page)
    screenshot(page, "template", full_page=True)
