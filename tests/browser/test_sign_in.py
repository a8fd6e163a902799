"""Sign in and out, wrong passwords, throttling, and CSRF refusal of a forged post."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    PASSWORD,
    LiveGateway,
    assert_accessible,
    free_port,
    screenshot,
    sign_in_as,
)

pytestmark = pytest.mark.browser


def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_the_session(
    page: Page, context: BrowserContext, gateway: LiveGateway
) -> None:
    app_id = gateway.create_app()
    email = gateway.add_user("write")
    page.goto(f"/apps/{app_id}/settings/audit-log")
    expect(page).to_have_url(
        f"{gateway.base_url}/login?next=%2Fapps%2F{app_id}%2Fsettings%2Faudit-log"
    )
    screenshot(page, "login")
    assert_accessible(page)

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "agentmark_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"/apps/{app_id}/settings/api-keys")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_wrong_password_says_so_and_repeated_failures_are_throttled(
    page: Page, gateway: LiveGateway
) -> None:
    email = gateway.add_user("read")
    page.goto("/login")
    for _attempt in range(3):  # the test gateway allows 3 failures
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Invalid email or password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Too many failed sign-ins; try again later")
    assert_accessible(page)  # the form with its error


def test_a_forged_cross_site_form_post_is_refused_with_403(
    page: Page, context: BrowserContext, gateway: LiveGateway
) -> None:
    owner = sign_in_as(gateway, context, "owner")
    # Another site on the same host (so SameSite=Lax still sends the cookie): only
    # the CSRF token stands between it and a new key.
    evil = f"http://127.0.0.1:{free_port()}/prize"
    target = gateway.base_url + owner.keys_url
    page.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"""<form method="post" action="{target}">
                <input name="name" value="attacker"><input name="role" value="full-access">
                <button>Claim your prize</button></form>""",
        ),
    )
    page.goto(evil)
    with page.expect_response(target) as refused:
        page.get_by_role("button", name="Claim your prize").click()
    assert refused.value.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert_accessible(page)

    page.goto(owner.keys_url)
    expect(page.get_by_text("No API keys yet")).to_be_visible()
