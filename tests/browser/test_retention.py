"""Settings > Data retention: an owner sets and resets an app's retention; a reader looks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    LiveGateway,
    SignedIn,
    assert_accessible,
    screenshot,
    sign_in_as,
)

pytestmark = pytest.mark.browser


def test_an_owner_sets_retention_sees_a_refusal_explained_and_resets_it(
    page: Page, owner: SignedIn
) -> None:
    page.goto(owner.keys_url)
    page.get_by_role("navigation", name="Settings sections").get_by_role(
        "link", name="Data retention"
    ).click()
    expect(page.get_by_role("heading", name="Data retention")).to_be_visible()
    days = page.get_by_label("Days to keep traces")
    expect(days).to_have_value("")
    expect(days).to_have_accessible_description(
        "0 to 3650; 0 keeps everything. Empty: the gateway's default (keep everything, "
        "set by AGENTMARK_RETENTION_DAYS)."
    )

    days.fill("90")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Days to keep traces")).to_have_value("90")
    screenshot(page, "retention")
    assert_accessible(page)

    page.get_by_label("Days to keep traces").fill("ninety")
    page.get_by_role("button", name="Save").click()
    field = page.get_by_label("Days to keep traces")
    expect(field).to_have_attribute("aria-invalid", "true")
    # The error is read out with the field, after its hint.
    expect(field).to_have_accessible_description(
        re.compile(r"keeps everything\..*Give a whole number of days, or leave it empty")
    )
    assert_accessible(page)  # the field in error

    field.fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Days to keep traces")).to_have_value("")


def test_a_reader_sees_the_retention_without_a_way_to_change_it(
    page: Page, context: BrowserContext, gateway: LiveGateway
) -> None:
    reader = sign_in_as(gateway, context, "read")
    page.goto(reader.url("retention"))
    expect(page.get_by_label("Days to keep traces")).not_to_be_editable()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
