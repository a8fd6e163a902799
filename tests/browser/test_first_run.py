"""First run: the setup link printed by ``serve`` creates the owner, once."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.users import service as users_service
from tests.browser.support import LiveGateway, assert_accessible, screenshot

pytestmark = pytest.mark.browser


def issue_setup_link(gateway: LiveGateway) -> str:
    async def work(session: AsyncSession) -> str:
        return await users_service.issue_link(
            session, purpose="setup", user_id=None, ttl=users_service.SETUP_TTL
        )

    return f"/setup/{gateway.run(work)}"


def test_setup_link_creates_the_owner_once_and_every_setup_link_dies(
    page: Page, gateway: LiveGateway
) -> None:
    link, spare = issue_setup_link(gateway), issue_setup_link(gateway)

    page.goto("/login")
    expect(page.get_by_text("No account exists yet")).to_be_visible()
    assert_accessible(page)
    page.goto(link)
    expect(page.get_by_role("heading", name="Create the owner account")).to_be_visible()
    screenshot(page, "setup")
    assert_accessible(page)
    page.get_by_label("Email").fill("founder@example.com")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Create owner account").click()
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("founder@example.com")
    expect(page.locator(".who .badge")).to_have_text("owner")
    assert_accessible(page)  # the first page after setup: no apps yet

    for used in (link, spare):
        page.goto(used)
        expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    assert_accessible(page)
