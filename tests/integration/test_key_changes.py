"""The change feed every process polls: what each kind of row makes a process
forget, and old rows pruned."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.api_keys.changes import CHANGE_RETENTION, TEMPLATES_CHANGED, KeyChange
from agentmark_gateway.app import create_app
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.templates.cache import Rendered
from tests.conftest import Admin, add_user


def _fill(gateway, *apps: str) -> None:
    for app_id in apps:
        gateway.templates.put(app_id, b"q", Rendered((), b"{}"), gateway.templates.generation)


def test_each_kind_of_change_forgets_what_it_names(client):
    gateway = client.app.state.gateway
    verifier = gateway.keys
    _fill(gateway, "app_a", "app_b")
    verifier.apply_change("keys", key_id="key_x", app_id=None)  # a key edit: templates stay
    assert len(gateway.templates) == 2
    verifier.apply_change(TEMPLATES_CHANGED, key_id=None, app_id="app_a")
    assert gateway.templates.get("app_a", b"q") is None
    assert gateway.templates.get("app_b", b"q") is not None
    verifier.apply_change("keys", key_id=None, app_id="app_b")  # the app was deleted
    assert len(gateway.templates) == 0
    _fill(gateway, "app_c")
    verifier.apply_change("something-newer", key_id=None, app_id=None)
    assert len(gateway.templates) == 0


def test_rows_older_than_the_retention_are_pruned(client):
    gateway = client.app.state.gateway

    async def scenario() -> tuple[int, int]:
        async with gateway.sessionmaker() as session:
            old = utcnow() - CHANGE_RETENTION - timedelta(minutes=1)
            session.add_all(
                [KeyChange(key_id="key_old", created_at=old), KeyChange(key_id="key_new")]
            )
            await session.commit()
        pruned = await gateway.changes.prune()
        async with gateway.sessionmaker() as session:
            left = await session.scalar(
                select(func.count()).select_from(KeyChange).where(KeyChange.key_id == "key_old")
            )
        return pruned, int(left or 0)

    pruned, left = client.portal.call(scenario)
    assert pruned >= 1 and left == 0


def test_a_key_deleted_through_the_service_alone_is_refused_here_at_once(settings, key_headers):
    """No router, page or poll forgets the key: committing the change does."""
    # A poll that never comes in this test: only the commit can tell this process.
    quiet = settings.model_copy(update={"invalidation_poll_seconds": 3600})
    with TestClient(create_app(quiet)) as client:
        admin = Admin(client, add_user(client, "owner@example.com", "owner"))
        key = admin.create_key(admin.create_app(), role="read-only")
        assert client.get("/v1/traces", headers=key_headers(key)).status_code == 200
        gateway = client.app.state.gateway

        async def delete() -> None:
            async with gateway.sessionmaker() as session:
                row = await keys.get_key(session, app_id=key["app_id"], key_id=key["id"])
                await keys.delete_key(session, actor=CLI_ACTOR, key=row)

        client.portal.call(delete)
        assert client.get("/v1/traces", headers=key_headers(key)).status_code == 401


def test_the_watch_stops_when_cancelled_as_a_change_is_announced(client):
    """Shutdown cancels the watch; a notice landing in the same moment must not
    swallow that cancellation (it did with asyncio.wait_for on Python 3.11, and
    the server then waited for the task forever)."""
    feed = client.app.state.gateway.changes

    async def scenario() -> bool:
        task = asyncio.create_task(feed.watch(60))
        await asyncio.sleep(0.05)  # waiting for a notice or the next tick
        feed.wake()
        task.cancel()
        await asyncio.wait([task], timeout=2)
        stopped = task.cancelled()
        task.cancel()  # leave nothing running if it was not
        return stopped

    assert client.portal.call(scenario)
