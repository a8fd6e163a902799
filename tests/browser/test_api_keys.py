"""Settings > API Keys in a real browser: every flow of the API keys guide."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys import service as keys_service
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.permissions.catalog import PERMISSIONS
from tests.browser.keys_ui import (
    choose_role,
    close_without_copying,
    create_key,
    dialog,
    open_create,
    row,
    submit_create,
)
from tests.browser.support import (
    PEPPER,
    LiveGateway,
    SignedIn,
    assert_accessible,
    csrf_token,
    screenshot,
    sign_in_as,
)

pytestmark = pytest.mark.browser

ALLOWED = (200, 404)  # 404: the probe template does not exist, but the key got through


def test_create_a_key_with_each_role_shows_its_permissions(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    page.goto(owner.keys_url)
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    screenshot(page, "api-keys-empty")
    assert_accessible(page)

    modal = open_create(page)
    for role, shown in (
        ("SDK", ["trace.ingest", "template.read", "score.write"]),
        (
            "Read-Only",
            [
                "trace.read",
                "span.read",
                "session.read",
                "score.read",
                "dataset.read",
                "metrics.read",
            ],
        ),
        ("Full Access", [p.name for p in PERMISSIONS]),
    ):
        choose_role(modal, role)
        expect(modal.locator("[data-role-panel]:visible .chip")).to_have_text(shown)
        expect(modal.get_by_role("group", name="Permissions")).to_be_hidden()
    choose_role(modal, "Custom")
    groups = modal.locator(".permission-group legend")
    expect(groups).to_have_text(
        ["Traces", "Templates", "Scores", "Spans", "Sessions", "Datasets", "Metrics", "Experiments"]
    )
    modal.locator('input[value="trace.read"]').check()
    modal.locator('input[value="template.read"]').check()
    modal.get_by_label("Name", exact=True).fill("scoring-worker")
    screenshot(page, "create-key-modal")
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    expect(page.get_by_role("link", name="Create API Key")).to_be_focused()

    values = {
        "sdk-key": create_key(page, "sdk-key", "SDK"),
        "bi-key": create_key(page, "bi-key", "Read-Only", expires="In 7 days"),
        "ci-key": create_key(page, "ci-key", "Full Access"),
        "worker-key": create_key(page, "worker-key", "Custom", ("trace.read", "template.read")),
    }
    expect(row(page, "sdk-key").locator(".chip")).to_have_text(["SDK"])
    expect(row(page, "bi-key").locator(".chip")).to_have_text(["Read-Only"])
    expect(row(page, "bi-key").locator(".expires")).to_contain_text("Expiring soon")
    expect(row(page, "ci-key").locator(".chip")).to_have_text(["Full Access"])
    expect(row(page, "worker-key").locator(".chip")).to_have_text(["trace.read", "template.read"])
    for name, value in values.items():
        expect(row(page, name).locator(".key-prefix")).to_have_text(
            f"sk_agentmark_{value[13:17]}…{value[-4:]}"
        )
        expect(row(page, name).locator(".created-by")).to_have_text(owner.email)
        expect(row(page, name).locator(".last-used")).to_have_text("Never")
    assert "sk_agentmark_" + values["sdk-key"][13:] not in page.content()
    screenshot(page, "api-keys-list")
    assert_accessible(page)

    assert gateway.data_status(values["sdk-key"], owner.app_id) in ALLOWED
    assert gateway.data_status(values["bi-key"], owner.app_id) == 403
    assert gateway.data_status(values["ci-key"], owner.app_id) in ALLOWED
    assert gateway.data_status(values["worker-key"], owner.app_id) in ALLOWED

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    screenshot(page, "api-keys-phone", full_page=True)
    assert_accessible(page)


def test_custom_role_with_nothing_checked_says_what_is_missing(page: Page, owner: SignedIn) -> None:
    page.goto(owner.keys_url)
    modal = submit_create(page, "empty-custom", "Custom")
    expect(modal.locator("#role-error")).to_have_text("Select a role or at least one permission")
    modal = submit_create_again = dialog(page)
    submit_create_again.get_by_role("button", name="Create API Key").click()
    expect(modal.locator("#role-error")).to_have_text("Select a role or at least one permission")
    modal.locator('input[value="score.write"]').check()
    modal.get_by_role("button", name="Create API Key").click()
    expect(modal.get_by_role("heading", name="API key created")).to_be_visible()


def test_a_duplicate_name_is_an_inline_error(page: Page, owner: SignedIn) -> None:
    page.goto(owner.keys_url)
    create_key(page, "production", "SDK")
    modal = submit_create(page, "production", "Read-Only")
    expect(modal.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(modal.locator("#key-name-error")).to_have_text(
        "An API key named 'production' already exists in this app"
    )
    modal.get_by_label("Name", exact=True).fill("production-2")
    modal.get_by_role("button", name="Create API Key").click()
    expect(modal.get_by_role("heading", name="API key created")).to_be_visible()


def test_copy_puts_the_value_on_the_clipboard_and_closing_before_copying_asks_first(
    page: Page, context: BrowserContext, owner: SignedIn, gateway: LiveGateway
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.base_url)
    page.goto(owner.keys_url)
    with page.expect_response(re.compile(r"/settings/api-keys$")) as created:
        modal = submit_create(page, "copied", "SDK")
    assert created.value.headers["cache-control"] == "no-store"
    expect(modal.get_by_text("It won't be shown again")).to_be_visible()
    value = modal.locator("#secret-value").input_value()
    assert_accessible(page)  # the show-once dialog

    page.keyboard.press("Escape")
    confirm = modal.get_by_role("alertdialog")
    expect(confirm).to_contain_text("You haven't copied the key")
    expect(modal).to_be_visible()
    assert_accessible(page)
    for _ in range(12):  # focus stays inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('modal').contains(document.activeElement)")
    modal.get_by_role("button", name="Go back").click()
    expect(confirm).to_be_hidden()

    modal.get_by_role("button", name="Copy key").click()
    expect(modal.get_by_role("button", name="Copied key")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == value
    page.keyboard.press("Escape")  # copied: closes without asking
    expect(modal).to_be_hidden()
    expect(page.locator("#modal-body")).to_be_empty()  # the value left the page with it
    assert value not in page.content()
    page.reload()
    expect(row(page, "copied")).to_be_visible()
    assert value not in page.content()
    assert gateway.data_status(value, owner.app_id) in ALLOWED


def test_edit_applies_to_the_next_request_and_keeps_the_value(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    page.goto(owner.keys_url)
    value = create_key(page, "worker", "Custom", ("template.read",))
    assert gateway.data_status(value, owner.app_id) in ALLOWED
    expect(row(page, "worker").locator(".updated")).to_have_count(0)

    row(page, "worker").get_by_role("link", name="Edit worker").click()
    modal = dialog(page)
    expect(modal.get_by_role("heading", name="Edit API Key Permissions")).to_be_visible()
    expect(modal.get_by_label("Name", exact=True)).to_have_value("worker")
    expect(modal.locator('input[value="template.read"]')).to_be_checked()
    assert value not in modal.inner_html()
    choose_role(modal, "Full Access")
    expect(modal.locator("[data-role-panel]:visible .chip")).to_have_count(len(PERMISSIONS))
    choose_role(modal, "Custom")
    modal.locator('input[value="template.read"]').uncheck()
    modal.locator('input[value="trace.read"]').check()
    modal.get_by_label("Name", exact=True).fill("worker-renamed")
    screenshot(page, "edit-key")
    assert_accessible(page)
    modal.get_by_role("button", name="Save").click()
    expect(modal).to_be_hidden()

    expect(row(page, "worker-renamed").locator(".chip")).to_have_text(["trace.read"])
    expect(row(page, "worker-renamed").locator(".updated")).to_have_text("Updated just now")
    assert gateway.data_status(value, owner.app_id) == 403


def test_delete_says_when_the_key_was_used_then_the_next_request_gets_401(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    page.goto(owner.keys_url)
    value = create_key(page, "doomed", "SDK")
    assert gateway.data_status(value, owner.app_id) in ALLOWED
    gateway.wait_for_last_used(owner.app_id, "doomed")

    row(page, "doomed").get_by_role("link", name="Delete doomed").click()
    modal = dialog(page)
    expect(modal.get_by_role("heading", name="Delete API key")).to_be_visible()
    expect(modal).to_contain_text("Delete doomed")
    expect(modal.locator(".recent-use")).to_contain_text("This key was used just now")
    screenshot(page, "delete-key")
    assert_accessible(page)
    modal.get_by_role("button", name="Delete API key").click()
    expect(modal).to_be_hidden()

    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    assert gateway.data_status(value, owner.app_id) == 401


def test_roll_shows_the_new_value_once_and_both_keys_work_during_the_grace_period(
    page: Page, owner: SignedIn, gateway: LiveGateway
) -> None:
    page.goto(owner.keys_url)
    old_value = create_key(page, "rotating", "SDK")

    row(page, "rotating").get_by_label("More actions for rotating").click()
    page.get_by_role("link", name="Roll key").click()
    modal = dialog(page)
    expect(modal.get_by_role("heading", name="Roll API key")).to_be_visible()
    expect(modal.get_by_role("radio")).to_have_count(4)
    modal.get_by_label("In 1 hour").check()
    screenshot(page, "roll-key")
    assert_accessible(page)
    modal.get_by_role("button", name="Roll key").click()

    expect(modal.get_by_role("heading", name="API key rolled")).to_be_visible()
    expect(modal.locator(".roll-note")).to_contain_text("The old key keeps working until")
    new_value = modal.locator("#secret-value").input_value()
    assert new_value != old_value
    assert_accessible(page)  # the show-once dialog of a rolled key
    close_without_copying(page)

    expect(row(page, "rotating").locator(".expires")).to_have_text("Never")
    # The old key's row: its own name, marked as being retired and when; nothing to
    # edit or roll on it, only to stop it now.
    old_row = page.locator("tr[data-retiring]")
    expect(old_row.locator(".key-name")).to_have_text("rotating Being retired")
    expect(old_row.locator(".expires")).to_have_text("Rolled: stops working in 1 hour")
    expect(old_row.get_by_role("link", name=re.compile("^Edit"))).to_have_count(0)
    expect(old_row.locator("details")).to_have_count(0)
    expect(old_row.get_by_role("link", name="Delete rotating (being retired)")).to_be_visible()
    screenshot(page, "api-keys-rolled")
    assert_accessible(page)
    assert gateway.data_status(old_value, owner.app_id) in ALLOWED
    assert gateway.data_status(new_value, owner.app_id) in ALLOWED


def test_a_read_user_sees_the_list_without_controls_and_the_server_refuses_anyway(
    page: Page, context: BrowserContext, gateway: LiveGateway
) -> None:
    app_id = gateway.create_app()

    async def seed(session: AsyncSession) -> str:
        new = await keys_service.create_key(
            session,
            actor=CLI_ACTOR,
            pepper=PEPPER.encode(),
            app_id=app_id,
            name="existing",
            role="sdk",
            permissions=None,
        )
        return new.key.id

    key_id = gateway.run(seed)
    reader = sign_in_as(gateway, context, "read", app_id)
    page.goto(reader.keys_url)
    expect(row(page, "existing")).to_be_visible()
    expect(page.get_by_role("link", name="Create API Key")).to_have_count(0)
    # The only link in the row is the key's name, to its page: nothing that changes it.
    expect(row(page, "existing").get_by_role("link")).to_have_text(["existing"])
    expect(row(page, "existing").locator("details")).to_have_count(0)

    token = csrf_token(page)
    base = gateway.base_url + reader.keys_url
    for url, form in (
        (base, {"name": "sneaky", "role": "full-access"}),
        (f"{base}/{key_id}", {"name": "renamed", "role": "full-access"}),
        (f"{base}/{key_id}/delete", {}),
        (f"{base}/{key_id}/roll", {"grace_seconds": "0"}),
    ):
        response = page.request.post(url, form={**form, "csrf_token": token})
        assert response.status == 403, url
    assert page.request.get(f"{base}/new").status == 403
    page.reload()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(row(page, "existing")).to_be_visible()


def test_the_breadcrumb_switches_apps_and_an_owner_creates_one(page: Page, owner: SignedIn) -> None:
    page.goto(owner.keys_url)
    switcher = page.locator(".switcher")
    switcher.locator("summary").click()
    switcher.get_by_role("link", name="New app").click()
    modal = dialog(page)
    modal.get_by_label("Name", exact=True).fill("zz-second-app")
    modal.get_by_role("button", name="Create app").click()
    expect(page.locator(".switcher .app-name")).to_have_text("zz-second-app")
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()

    page.locator(".switcher summary").click()
    page.locator(".switcher").get_by_role("link").filter(
        has_text=re.compile(r"^app-")
    ).first.click()
    expect(page.locator(".switcher .app-name")).not_to_have_text("zz-second-app")
