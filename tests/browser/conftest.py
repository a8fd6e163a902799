"""Playwright against a real gateway: uvicorn in a thread, Debian's Chromium, SQLite.

Each test module gets its own server and a fresh database; each test gets its
own browser context (its own cookies) and, usually, its own app. Set
``AGENTMARK_SCREENSHOTS_DIR=docs/screenshots`` to refresh the README's images;
by default screenshots go to ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.settings import Settings
from tests.browser.support import (
    PEPPER,
    LiveGateway,
    SignedIn,
    data_probe,
    free_port,
    in_thread,
    sign_in_as,
)

CHROMIUM = os.environ.get("AGENTMARK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    root = tmp_path_factory.mktemp("gateway")
    database_url = f"sqlite:///{root / 'gateway.db'}"
    # Playwright's sync API keeps an event loop on this thread; migrations run their own.
    in_thread(migrate.upgrade, database_url)
    settings = Settings(
        data_dir=root / "data",
        database_url=database_url,
        key_pepper=PEPPER,
        last_used_flush_seconds=0.2,
        login_max_failures=3,
    )
    app = create_app(settings)
    probe = data_probe(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    yield LiveGateway(base_url=f"http://127.0.0.1:{port}", database_url=database_url, probe=probe)
    server.should_exit = True
    thread.join(timeout=15)


# Module scope, not session: Playwright's sync API holds an event loop on the main
# thread while it runs, and the tests after these (asyncio.run in fixtures) need it gone.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
        pytest.skip(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, gateway: LiveGateway) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=gateway.base_url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(5000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any script error or Content-Security-Policy refusal."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    assert not problems, problems


@pytest.fixture
def owner(gateway: LiveGateway, context: BrowserContext) -> SignedIn:
    """A signed-in owner with an app of their own."""
    return sign_in_as(gateway, context, "owner")
