"""A key's own page in Chromium: its requests drawn with uPlot under the dashboard's CSP,
and "Shrink to what's used" taking a Full Access key used only for ingest down to
``trace.ingest``, after which it still ingests and gets 403 elsewhere.

The page and the shrink dialog pass axe-core with no serious or critical violation.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import service as keys_service
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.usage.models import HOUR, KeyUsage
from tests.browser.keys_ui import dialog
from tests.browser.support import (
    PEPPER,
    LiveGateway,
    SignedIn,
    assert_accessible,
    screenshot,
)
from tests.fixtures.otlp import payloads

pytestmark = pytest.mark.browser

SDK_AGENT = "agentmark-sdk-python/0.4.1"
# Earlier traffic of the key, hour by hour: (hours ago, spans ingested, 429s, 403s).
EARLIER = [
    (hours, 20 + (hours * 7) % 23, 3 if hours == 5 else 0, 2 if hours == 9 else 0)
    for hours in range(1, 23)
]


def full_access_key(gateway: LiveGateway, app_id: str) -> tuple[str, str]:
    """A Full Access key with a day of ingest behind it; its id and value."""

    async def work(session: AsyncSession) -> tuple[str, str]:
        new = await keys_service.create_key(
            session,
            actor=CLI_ACTOR,
            pepper=PEPPER.encode(),
            app_id=app_id,
            name="ingest-worker",
            role="full-access",
            permissions=None,
        )
        now = utcnow().replace(minute=0, second=0, microsecond=0)
        session.add_all(
            earlier_hour(new.key, now - timedelta(hours=hours), ok, limited, refused)
            for hours, ok, limited, refused in EARLIER
        )
        return new.key.id, new.plaintext

    return gateway.run(work)


def earlier_hour(key: ApiKey, start, ok: int, limited: int, refused: int) -> KeyUsage:
    return KeyUsage(
        app_id=key.app_id,
        key_id=key.id,
        granularity=HOUR,
        bucket_start=start,
        ok=ok,
        client_error=0,
        unauthorized=0,
        forbidden=refused,
        rate_limited=limited,
        server_error=0,
        spans=ok,
        scores=0,
        permission_sets={"trace.ingest": ok},
        refused={"trace.read": refused} if refused else {},
        last_client_address="10.0.4.17",
        last_user_agent=SDK_AGENT,
        last_seen_at=start + timedelta(minutes=59),
    )


def ingest(gateway: LiveGateway, value: str, app_id: str) -> int:
    body = payloads.request([payloads.span(payloads.trace_id(), name="ingest-probe")])
    response = httpx.post(
        f"{gateway.base_url}/v1/traces",
        json=body,
        headers={"Authorization": value, "X-Agentmark-App-Id": app_id, "User-Agent": SDK_AGENT},
        timeout=10,
    )
    return response.status_code


def read_traces(gateway: LiveGateway, value: str, app_id: str) -> int:
    response = httpx.get(
        f"{gateway.base_url}/v1/traces",
        headers={"Authorization": value, "X-Agentmark-App-Id": app_id},
        timeout=10,
    )
    return response.status_code


def test_a_full_access_key_used_only_for_ingest_is_shrunk_to_trace_ingest(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    key_id, value = full_access_key(gateway, owner.app_id)
    for _ in range(2):
        assert ingest(gateway, value, owner.app_id) == 200
    week = sum(ok for _h, ok, _l, _r in EARLIER) + 2

    page.goto(owner.keys_url)
    page.get_by_role("link", name="ingest-worker", exact=True).click()
    expect(page).to_have_url(f"{gateway.base_url}{owner.keys_url}/{key_id}")
    expect(page.get_by_role("heading", name="ingest-worker")).to_be_visible()
    # uPlot drew the series on a canvas (a CSP refusal or script error fails the test).
    expect(page.locator(".usage-chart .uplot canvas")).to_be_visible()
    expect(page.locator("#chart-summary")).to_contain_text(f"{week + 5:,} requests")
    expect(page.locator(".last-agent")).to_have_text(SDK_AGENT)
    expect(page.locator("[data-advice]")).to_contain_text("used 1 in 30 days")
    expect(page.locator("[data-advice]")).to_contain_text("shrink it to trace.ingest")
    assert_accessible(page)
    screenshot(page, "key-page", full_page=True)

    # Another range: htmx swaps the page's content and the chart is drawn again.
    page.get_by_role("link", name="7 days, by hour").click()
    expect(page.get_by_role("link", name="7 days, by hour")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.locator(".usage-chart .uplot canvas")).to_be_visible()

    page.get_by_role("link", name="Shrink to what's used").click()
    modal = dialog(page)
    expect(modal.get_by_role("heading", name="Shrink to what's used")).to_be_visible()
    ingest_box = modal.get_by_role("checkbox", name="trace.ingest")
    read_box = modal.get_by_role("checkbox", name="template.read")
    expect(ingest_box).to_be_checked()
    expect(modal.get_by_role("checkbox", checked=True)).to_have_count(1)
    preview = modal.locator("[data-preview]")
    expect(preview).to_contain_text(f"of the {week:,} requests")
    expect(preview).to_have_attribute("data-refused", "0")
    assert_accessible(page)
    # A set of one's own: the preview says what it would have refused.
    ingest_box.uncheck()
    read_box.check()
    expect(preview).to_have_attribute("data-refused", str(week))
    screenshot(page, "shrink-key")
    read_box.uncheck()
    ingest_box.check()
    expect(preview).to_have_attribute("data-refused", "0")
    modal.get_by_role("button", name="Apply").click()
    expect(modal).to_be_hidden()

    # The page shows the key as it is now, and the edit in its history.
    expect(page.locator(".facts .chips")).to_have_text("trace.ingest")
    expect(page.locator('.key-history [data-action="api_key.update"]')).to_contain_text(
        "Edited API key"
    )
    assert ingest(gateway, value, owner.app_id) == 200
    assert read_traces(gateway, value, owner.app_id) == 403
