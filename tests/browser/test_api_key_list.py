"""Settings > API Keys for a team with many keys: search, filters, sort and pages; the
per-key settings in the modals; the show-once environment lines; the key policy.

Each page state checked here also passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import service as keys_service
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.db.base import utcnow
from tests.browser.keys_ui import close_without_copying, open_create, row
from tests.browser.support import (
    PEPPER,
    LiveGateway,
    SignedIn,
    assert_accessible,
    screenshot,
)

pytestmark = pytest.mark.browser


def seed_keys(gateway: LiveGateway, app_id: str) -> None:
    """57 keys: 50 SDK workers, 5 read-only dashboards, one expiring CI key, and one
    forgotten key nobody used for 40 days."""

    async def work(session: AsyncSession) -> None:
        now = utcnow()
        specs = [(f"worker-{n:02}", "sdk", None) for n in range(50)]
        specs += [(f"dashboard-{n}", "read-only", None) for n in range(5)]
        specs += [("ci-deploy", "full-access", now + timedelta(days=2))]
        specs += [("forgotten", "sdk", None)]
        for name, role, expires_at in specs:
            new = keys_service.mint(
                pepper=PEPPER.encode(),
                app_id=app_id,
                name=name,
                role=role,
                permissions=[],
                created_by=CLI_ACTOR.label,
                expires_at=expires_at,
            )
            session.add(new.key)
        await session.flush()
        await session.execute(
            update(ApiKey)
            .where(ApiKey.app_id == app_id, ApiKey.name == "forgotten")
            .values(
                created_at=now - timedelta(days=90),
                updated_at=now - timedelta(days=90),
                last_used_at=now - timedelta(days=40),
            )
        )
        await session.execute(
            update(ApiKey)
            .where(ApiKey.app_id == app_id, ApiKey.name == "dashboard-3")
            .values(last_used_at=now - timedelta(minutes=5))
        )

    gateway.run(work)


def names(page: Page) -> list[str]:
    return page.locator("#key-results tbody th.key-name").all_inner_texts()


def test_search_filter_sort_and_pages_through_many_keys(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    seed_keys(gateway, owner.app_id)
    page.goto(owner.keys_url)
    expect(page.locator("#key-results tbody tr")).to_have_count(50)
    expect(page.locator(".pager")).to_contain_text("1\u201350 of 57 keys")
    expect(page.get_by_role("columnheader", name="Created At")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Next").click()
    expect(page.locator(".pager")).to_contain_text("51\u201357 of 57 keys")
    expect(page.locator("#key-results tbody tr")).to_have_count(7)
    expect(page).to_have_url(re.compile(r"page=2"))

    search = page.get_by_role("searchbox", name="Search")
    search.fill("DASHBOARD")
    expect(page.locator("#key-results tbody tr")).to_have_count(5)
    expect(search).to_be_focused()  # only the results were swapped
    expect(page).to_have_url(re.compile(r"q=DASHBOARD"))

    page.get_by_label("Sort").select_option(label="Recently used")
    expect(page.locator("#key-results tbody th.key-name").first).to_have_text("dashboard-3")

    search.fill("")
    page.get_by_label("Role").select_option(label="Full Access")
    expect(page.locator("#key-results tbody th.key-name")).to_have_text(["ci-deploy"])
    page.get_by_label("Role").select_option(label="All roles")
    page.get_by_label("Show").select_option(label="Expiring within 7 days")
    expect(page.locator("#key-results tbody th.key-name")).to_have_text(["ci-deploy"])
    page.get_by_label("Show").select_option(label="Unused for 30 days")
    expect(page.locator("#key-results tbody th.key-name")).to_have_text(["forgotten"])
    screenshot(page, "api-keys-filtered")

    page.reload()  # the address keeps the view
    expect(page.get_by_label("Show")).to_have_value("unused")
    expect(page.locator("#key-results tbody th.key-name")).to_have_text(["forgotten"])
    search = page.get_by_role("searchbox", name="Search")
    search.fill("no such key")
    expect(page.locator(".no-match")).to_contain_text("No keys match")
    assert_accessible(page)


def test_modal_sets_rate_limit_allowlist_and_expiry_and_errors_clear_when_fixed(
    page: Page, context: BrowserContext, owner: SignedIn, gateway: LiveGateway
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.base_url)
    page.goto(owner.keys_url)
    modal = open_create(page)
    modal.get_by_label("Name", exact=True).fill("edge-worker")
    modal.locator('input[name="role"][value="sdk"]').check()
    modal.get_by_label("Expires").select_option(label="On a date…")
    day = (utcnow() + timedelta(days=20)).date().isoformat()
    modal.get_by_label("Expiry date").fill(day)
    modal.get_by_label("Rate limit").fill("lots")
    modal.get_by_label("IP allowlist").fill("203.0.113.0/24\n10.0.0.1/8")
    modal.get_by_role("button", name="Create API Key").click()

    rate = modal.get_by_label("Rate limit")
    cidrs = modal.get_by_label("IP allowlist")
    expect(rate).to_have_attribute("aria-invalid", "true")
    expect(cidrs).to_have_attribute("aria-invalid", "true")
    expect(rate).to_be_focused()  # the first error
    expect(modal.locator("#key-allowed-cidrs-error")).to_contain_text("10.0.0.1/8")
    expect(modal.get_by_label("Expiry date")).to_have_value(day)
    assert_accessible(page)
    screenshot(page, "create-key-errors")

    rate.fill("600")
    expect(modal.locator("#key-rate-limit-error")).to_have_count(0)
    expect(rate).not_to_have_attribute("aria-invalid", "true")
    expect(cidrs).to_have_attribute("aria-invalid", "true")  # not fixed yet
    cidrs.fill("203.0.113.0/24\n2001:db8::/32")
    expect(modal.locator("#key-allowed-cidrs-error")).to_have_count(0)
    modal.get_by_role("button", name="Create API Key").click()

    expect(modal.get_by_role("heading", name="API key created")).to_be_visible()
    value = modal.locator("#secret-value").input_value()
    env = modal.get_by_label("For your deployment's environment")
    expect(env).to_have_value(f"AGENTMARK_API_KEY={value}\nAGENTMARK_APP_ID={owner.app_id}")
    assert_accessible(page)
    screenshot(page, "show-once")
    modal.get_by_role("button", name="Copy environment variables").click()
    expect(modal.get_by_role("button", name="Copied environment variables")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"AGENTMARK_API_KEY={value}\nAGENTMARK_APP_ID={owner.app_id}"
    )
    page.keyboard.press("Escape")  # copied: closes without asking
    expect(modal).to_be_hidden()
    assert value not in page.content()
    expect(row(page, "edge-worker").locator(".expires")).to_have_text(
        re.compile(r"in (19|20) days")
    )

    row(page, "edge-worker").get_by_role("link", name="Edit edge-worker").click()
    expect(modal.get_by_role("heading", name="Edit API Key Permissions")).to_be_visible()
    expect(modal.get_by_label("Rate limit")).to_have_value("600")
    expect(modal.get_by_label("IP allowlist")).to_have_value("203.0.113.0/24\n2001:db8::/32")
    modal.get_by_label("Rate limit").fill("")
    modal.get_by_label("IP allowlist").fill("")
    modal.get_by_role("button", name="Save").click()
    expect(modal).to_be_hidden()

    async def settings(session: AsyncSession) -> tuple[int | None, list[str] | None]:
        key = await keys_service.find_key(session, app_id=owner.app_id, id_or_name="edge-worker")
        return key.rate_limit_per_minute, key.allowed_cidrs

    assert gateway.run(settings) == (None, None)


def test_key_policy_limits_the_expiry_choices_and_the_server_holds_to_it(
    page: Page, owner: SignedIn
) -> None:
    page.goto(owner.keys_url)
    policy = page.get_by_role("region", name="Key policy")
    policy.get_by_label("Maximum key lifetime (days)").fill("7")
    policy.get_by_role("button", name="Save key policy").click()
    expect(page.get_by_role("status")).to_have_text("Key policy saved.")
    expect(policy.get_by_label("Maximum key lifetime (days)")).to_have_value("7")

    modal = open_create(page)
    expiry = modal.get_by_label("Expires")
    expect(expiry).to_have_value("7d")  # the longest allowed, not "Never"
    expect(expiry.locator("option")).to_have_text(["In 1 day", "In 7 days", "On a date…"])
    expect(modal.locator("#key-expiry-hint")).to_have_text(
        "This app's key policy: expiry at most 7 days ahead."
    )
    modal.get_by_label("Name", exact=True).fill("too-long")
    modal.locator('input[name="role"][value="sdk"]').check()
    expiry.select_option(label="On a date…")
    modal.get_by_label("Expiry date").fill((utcnow() + timedelta(days=30)).date().isoformat())
    modal.get_by_role("button", name="Create API Key").click()
    expect(modal.locator("#key-expiry-error")).to_have_text(
        "expires_at must be at most 7 days ahead: this app's key policy"
    )
    expect(expiry).to_be_focused()
    expiry.select_option(label="In 1 day")
    expect(modal.locator("#key-expiry-error")).to_have_count(0)
    modal.get_by_role("button", name="Create API Key").click()
    expect(modal.get_by_role("heading", name="API key created")).to_be_visible()
    close_without_copying(page)

    policy.get_by_label("Maximum key lifetime (days)").fill("0")
    policy.get_by_role("button", name="Save key policy").click()
    field = page.get_by_label("Maximum key lifetime (days)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#policy-max-lifetime-error")).to_contain_text("from 1 to 3650")
    assert_accessible(page)
