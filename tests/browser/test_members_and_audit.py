"""Organization settings > Members (invite, role change, removal) and Settings > Audit log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.keys_ui import choose_role, close_without_copying, create_key, dialog, row
from tests.browser.support import (
    LiveGateway,
    SignedIn,
    assert_accessible,
    screenshot,
    sign_in_as,
)

pytestmark = pytest.mark.browser


def test_an_invite_link_sets_the_password_once_and_signs_the_member_in(
    page: Page, owner: SignedIn, browser: Browser, gateway: LiveGateway
) -> None:
    page.goto(owner.url("members"))
    page.get_by_role("link", name="Invite member").click()
    modal = dialog(page)
    assert_accessible(page)  # the invite dialog
    modal.get_by_label("Email").fill("new.hire@example.com")
    modal.get_by_label("Role").select_option("write")
    modal.get_by_role("button", name="Create invitation").click()
    expect(modal.get_by_role("heading", name="Invitation created")).to_be_visible()
    link = modal.locator("#secret-value").input_value()
    assert_accessible(page)
    assert link.startswith(f"{gateway.base_url}/invite/")
    close_without_copying(page)
    invited = page.locator('tr[data-member="new.hire@example.com"]')
    expect(invited).to_contain_text("Invited")
    screenshot(page, "members")
    assert_accessible(page)

    guest = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        newcomer = guest.new_page()
        newcomer.goto(link)
        expect(newcomer.get_by_text("You were invited as new.hire@example.com")).to_be_visible()
        assert_accessible(newcomer)
        newcomer.get_by_label("Password").fill("a fine new password")
        newcomer.get_by_role("button", name="Set password and sign in").click()
        expect(newcomer.locator(".who")).to_contain_text("new.hire@example.com")
        expect(newcomer.locator(".who .badge")).to_have_text("write")
        newcomer.goto(link)
        expect(newcomer.get_by_role("heading", name="This link no longer works")).to_be_visible()
    finally:
        guest.close()

    page.reload()
    expect(invited).to_contain_text("Active")


def test_an_owner_changes_a_role_and_removes_a_member(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    email = gateway.add_user("read")
    page.goto(owner.url("members"))
    member = page.locator(f'tr[data-member="{email}"]')
    # The select changes at once in the page; wait for the save before reloading.
    with page.expect_response(
        lambda response: response.request.method == "POST" and response.url.endswith("/role")
    ) as saved:
        member.get_by_label(f"Role of {email}").select_option("admin")
    assert saved.value.ok
    expect(page.locator(f'tr[data-member="{email}"] select')).to_have_value("admin")
    page.reload()
    expect(member.get_by_label(f"Role of {email}")).to_have_value("admin")

    member.get_by_role("link", name=f"Remove {email}").click()
    modal = dialog(page)
    expect(modal).to_contain_text(f"Remove {email}")
    assert_accessible(page)
    modal.get_by_role("button", name="Remove member").click()
    expect(modal).to_be_hidden()
    expect(member).to_have_count(0)


def test_a_read_user_sees_members_without_controls(
    page: Page, context: BrowserContext, gateway: LiveGateway
) -> None:
    reader = sign_in_as(gateway, context, "read")
    page.goto(reader.url("members"))
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    expect(page.get_by_role("link", name="Invite member")).to_have_count(0)
    expect(page.locator("tbody select")).to_have_count(0)


def test_the_audit_log_lists_key_events_newest_first_with_permission_changes(
    page: Page, owner: SignedIn
) -> None:
    page.goto(owner.keys_url)
    create_key(page, "audited", "Custom", ("trace.read", "score.write"))
    row(page, "audited").get_by_role("link", name="Edit audited").click()
    modal = dialog(page)
    choose_role(modal, "Custom")
    modal.locator('input[value="score.write"]').uncheck()
    modal.locator('input[value="dataset.read"]').check()
    modal.get_by_role("button", name="Save").click()
    expect(modal).to_be_hidden()
    row(page, "audited").get_by_role("link", name="Delete audited").click()
    dialog(page).get_by_role("button", name="Delete API key").click()
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    events = page.locator("tbody tr")
    expect(events.locator(".action")).to_have_text(
        ["Deleted API key", "Edited API key", "Created API key", "Created app"]
    )
    expect(events.nth(0).locator(".actor")).to_have_text(owner.email)
    edited = events.nth(1)
    expect(edited.locator(".chips.added .chip")).to_have_text(["dataset.read"])
    expect(edited.locator(".chips.removed .chip")).to_have_text(["score.write"])
    expect(events.nth(2).locator(".chip")).to_have_text(["trace.read", "score.write"])
    screenshot(page, "audit-log")
    assert_accessible(page)


def test_members_live_under_organization_settings_not_an_apps(page: Page, owner: SignedIn) -> None:
    page.goto(owner.keys_url)
    tabs = page.get_by_role("navigation", name="Settings sections")
    expect(tabs.get_by_role("link", name="API Keys")).to_be_visible()
    expect(tabs.get_by_role("link", name="Members")).to_have_count(0)

    page.locator(".account").get_by_role("link", name="Members").click()
    expect(page).to_have_url(re.compile(r"/settings/members$"))
    expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text(
        "Organization settings"
    )
    expect(page.locator(".switcher")).to_have_count(0)  # no app is chosen here
    org_tabs = page.get_by_role("navigation", name="Organization settings sections")
    expect(org_tabs.get_by_role("link", name="Members")).to_have_attribute("aria-current", "page")

    page.goto(owner.url("members"))  # where it was: the old address still arrives
    expect(page).to_have_url(re.compile(r"/settings/members$"))
