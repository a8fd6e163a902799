"""Steps a user takes on Settings > API Keys, shared by the browser tests."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

ROLE_VALUES = {
    "SDK": "sdk",
    "Read-Only": "read-only",
    "Full Access": "full-access",
    "Custom": "custom",
}


def dialog(page: Page) -> Locator:
    return page.locator("dialog#modal")


def open_create(page: Page) -> Locator:
    page.get_by_role("link", name="Create API Key").first.click()
    modal = dialog(page)
    expect(modal.get_by_role("heading", name="Create API Key")).to_be_visible()
    return modal


def choose_role(modal: Locator, role: str) -> None:
    modal.locator(f'input[name="role"][value="{ROLE_VALUES[role]}"]').check()


def submit_create(
    page: Page,
    name: str,
    role: str | None,
    permissions: tuple[str, ...] = (),
    expires: str | None = None,
) -> Locator:
    modal = open_create(page)
    modal.get_by_label("Name", exact=True).fill(name)
    if role:
        choose_role(modal, role)
    for permission in permissions:
        modal.locator(f'input[name="permissions"][value="{permission}"]').check()
    if expires:
        modal.get_by_label("Expires").select_option(label=expires)
    modal.get_by_role("button", name="Create API Key").click()
    return modal


def create_key(
    page: Page,
    name: str,
    role: str,
    permissions: tuple[str, ...] = (),
    expires: str | None = None,
) -> str:
    """Create through the modal; returns the value the show-once dialog shows."""
    modal = submit_create(page, name, role, permissions, expires)
    expect(modal.get_by_role("heading", name="API key created")).to_be_visible()
    value = modal.locator("#secret-value").input_value()
    assert value.startswith("sk_agentmark_")
    close_without_copying(page)
    return value


def close_without_copying(page: Page) -> None:
    modal = dialog(page)
    modal.get_by_role("link", name="Done").click()
    modal.get_by_role("button", name="Close without copying").click()
    expect(modal).to_be_hidden()


def row(page: Page, name: str) -> Locator:
    return page.locator(f'tr[data-key-name="{name}"]')
