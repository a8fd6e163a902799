"""The live gateway the browser tests drive, and helpers to seed it and inspect pages."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from axe_playwright_python.sync_playwright import Axe
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from playwright.sync_api import BrowserContext, Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.apps import service as apps_service
from agentmark_gateway.audit.service import Actor
from agentmark_gateway.auth import service as auth_service
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.permissions.enforce import all_routes, requires
from agentmark_gateway.users import service as users_service

PASSWORD = "correct horse battery"
PEPPER = "browser-test-pepper"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(
    os.environ.get("AGENTMARK_SCREENSHOTS_DIR", ROOT / "test-artifacts" / "screenshots")
)
PROBE_PATH = "/test-only/template-read"
AXE = Axe()
BLOCKING_IMPACTS = ("serious", "critical")

T = TypeVar("T")


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking code that starts its own event loop, away from Playwright's."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def data_probe(app: FastAPI) -> str:
    """A data route needing template.read: the real one when it exists, else a test-only one.

    The test-only route uses the production ``requires`` dependency, so the key
    check and the permission check are the gateway's own.
    """
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute) and route.path == "/v1/templates" and "GET" in route.methods:
            return "/v1/templates?path=probe.prompt.mdx"
    probe = APIRouter()

    @probe.get(PROBE_PATH, include_in_schema=False)
    async def template_read_probe(key: VerifiedKey = requires("template.read")) -> dict[str, str]:
        return {"app_id": key.app_id}

    app.include_router(probe)
    return PROBE_PATH


@dataclass
class LiveGateway:
    base_url: str
    database_url: str
    probe: str

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` with a database session of its own (on a worker thread, outside
        Playwright's event loop)."""

        async def main() -> T:
            engine = make_engine(self.database_url)
            try:
                async with make_sessionmaker(engine)() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            finally:
                await engine.dispose()

        return in_thread(asyncio.run, main())

    def add_user(self, role: str, email: str | None = None, password: str | None = PASSWORD) -> str:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"

        async def work(session: AsyncSession) -> None:
            await users_service.create_user(session, email=email, role=role, password=password)

        self.run(work)
        return email

    def session_token(self, email: str) -> str:
        async def work(session: AsyncSession) -> str:
            user = await users_service.get_by_email(session, email)
            assert user is not None
            return await auth_service.start_session(session, user=user, ttl_seconds=3600)

        return self.run(work)

    def create_app(self, name: str | None = None, *, by: str = "cli") -> str:
        name = name or f"app-{uuid.uuid4().hex[:6]}"

        async def work(session: AsyncSession) -> str:
            app = await apps_service.create_app(session, actor=Actor(by, "owner"), name=name)
            return app.id

        return self.run(work)

    def wait_for_last_used(self, app_id: str, name: str, timeout: float = 5.0) -> None:
        """Last-used times are written in batches; wait until this key's is."""

        async def written(session: AsyncSession) -> bool:
            found = await session.scalar(
                select(ApiKey.last_used_at).where(
                    ApiKey.app_id == app_id, ApiKey.name == name, ApiKey.deleted_at.is_(None)
                )
            )
            return found is not None

        deadline = time.monotonic() + timeout
        while not self.run(written):
            assert time.monotonic() < deadline, f"last-used time of {name} never written"
            time.sleep(0.1)

    def data_status(self, key: str, app_id: str) -> int:
        """What an SDK-style request with this key gets on a route needing template.read."""
        response = httpx.get(
            self.base_url + self.probe,
            headers={"Authorization": key, "X-Agentmark-App-Id": app_id},
            timeout=10,
        )
        return response.status_code


@dataclass
class SignedIn:
    email: str
    app_id: str

    @property
    def keys_url(self) -> str:
        return f"/apps/{self.app_id}/settings/api-keys"

    def url(self, section: str) -> str:
        return f"/apps/{self.app_id}/settings/{section}"


def sign_in_as(
    gateway: LiveGateway, context: BrowserContext, role: str, app_id: str | None = None
) -> SignedIn:
    """A user of ``role`` with a session cookie, as if they had signed in (and an app:
    the one given, or a new one of their own)."""
    email = gateway.add_user(role)
    app_id = app_id or gateway.create_app(by=email)
    token = gateway.session_token(email)
    context.add_cookies([{"name": "agentmark_session", "value": token, "url": gateway.base_url}])
    return SignedIn(email=email, app_id=app_id)


def screenshot(page: Page, name: str, **options: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Hiding the caret styles the page's inputs inline, which its CSP refuses (and the
    # page fixture reports) when a form sits outside an open dialog.
    options.setdefault("caret", "initial")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


def csrf_token(page: Page) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.content())
    assert match, "the page carries no CSRF token"
    return match.group(1)


def assert_accessible(page: Page, *, exclude: list[str] | None = None) -> None:
    """axe-core on the page as it stands: no serious or critical violation.

    ``exclude`` lists CSS selectors of third-party markup we do not control and
    cannot fix; everything else on the page is checked.
    """
    context: dict[str, Any] | None = None
    if exclude:
        context = {"include": [["html"]], "exclude": [[selector] for selector in exclude]}
    found = AXE.run(page, context=context).response["violations"]
    bad = [v for v in found if v.get("impact") in BLOCKING_IMPACTS]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']}; at "
        + ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:3])
        + (f" and {len(v['nodes']) - 3} more" if len(v["nodes"]) > 3 else "")
        for v in bad
    ]
    assert not bad, f"axe-core on {page.url}:\n  " + "\n  ".join(lines)
