"""Two gateway processes on one database: a change made through either is honoured
by both within a second (edit, delete, roll with grace expiry, app deletion), and
usage counted in each adds up exactly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.users.service import create_user
from tests.conftest import PEPPER, database_copy
from tests.servers import gateway_process

pytestmark = pytest.mark.slow

PROBE = ("/v1/templates", {"path": "missing.prompt.mdx"})


def _add_owner(database_url: str) -> None:
    async def work() -> None:
        engine = make_engine(database_url)
        async with make_sessionmaker(engine)() as session:
            await create_user(
                session, email="ops@example.com", role="owner", password="a long password"
            )
            await session.commit()
        await engine.dispose()

    asyncio.run(work())


@pytest.fixture(scope="module")
def shared_database(template_database, tmp_path_factory):
    """One database for the module: every test makes its own app and keys, so the two
    processes (~5 to 12 s to start) are started once, not once per test."""
    folder = tmp_path_factory.mktemp("multiprocess")
    with database_copy(template_database, folder, "agw_multiprocess") as url:
        yield url


@pytest.fixture(scope="module")
def two_gateways(shared_database, tmp_path_factory):
    database_url = shared_database
    tmp_path = tmp_path_factory.mktemp("gateways")
    _add_owner(database_url)
    # Usage counts written often, so a test reads the other process's within moments.
    often = {"AGENTMARK_USAGE_FLUSH_SECONDS": "0.2"}
    with (
        gateway_process(database_url, tmp_path / "a", pepper=PEPPER, extra_env=often) as first,
        gateway_process(database_url, tmp_path / "b", pepper=PEPPER, extra_env=often) as second,
    ):
        token = httpx.post(
            f"{first}/v1/auth/login",
            json={"email": "ops@example.com", "password": "a long password"},
        ).json()["data"]["token"]
        yield first, second, {"Authorization": f"Bearer {token}"}


def status(base: str, key: str, app_id: str) -> int:
    path, params = PROBE
    return httpx.get(
        f"{base}{path}", params=params, headers={"Authorization": key, "X-Agentmark-App-Id": app_id}
    ).status_code


def within_a_second(check: Callable[[], bool]) -> float:
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        if check():
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("the other process did not see the change within one second")


def setup_key(base: str, admin: dict[str, str], **body) -> tuple[str, dict]:
    app_id = httpx.post(
        f"{base}/v1/apps", json={"name": f"app-{time.monotonic_ns()}"}, headers=admin
    ).json()["data"]["id"]
    key = httpx.post(
        f"{base}/v1/api-keys",
        json={"name": "k", **body},
        headers={**admin, "X-Agentmark-App-Id": app_id},
    ).json()["data"]
    return app_id, key


def test_edit_through_one_process_is_seen_by_the_other(two_gateways):
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="sdk")
    value = key["plaintext_key"]
    assert status(second, value, app_id) == 404  # warms the second process's cache
    httpx.patch(
        f"{first}/v1/api-keys/{key['id']}", json={"permissions": ["trace.read"]}, headers=admin
    ).raise_for_status()
    assert status(first, value, app_id) == 403
    within_a_second(lambda: status(second, value, app_id) == 403)


def test_delete_through_one_process_is_seen_by_the_other(two_gateways):
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="sdk")
    value = key["plaintext_key"]
    assert status(second, value, app_id) == 404
    assert httpx.delete(f"{first}/v1/api-keys/{key['id']}", headers=admin).status_code == 204
    assert status(first, value, app_id) == 401
    within_a_second(lambda: status(second, value, app_id) == 401)


def test_roll_with_grace_keeps_both_working_then_the_old_key_ends_everywhere(two_gateways):
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="sdk")
    old = key["plaintext_key"]
    assert status(second, old, app_id) == 404
    rolled = httpx.post(
        f"{first}/v1/api-keys/{key['id']}/roll", json={"grace_seconds": 2}, headers=admin
    ).json()["data"]
    new = rolled["plaintext_key"]
    for base in (first, second):
        assert status(base, old, app_id) == 404
        assert status(base, new, app_id) == 404
    time.sleep(2.05)
    for base in (first, second):
        assert status(base, old, app_id) == 401
        assert status(base, new, app_id) == 404


def test_app_deletion_through_one_process_is_seen_by_the_other(two_gateways):
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="full-access")
    value = key["plaintext_key"]
    assert status(second, value, app_id) == 404
    assert httpx.delete(f"{first}/v1/apps/{app_id}", headers=admin).status_code == 204
    within_a_second(lambda: status(second, value, app_id) == 401)


def test_cli_changes_reach_a_running_gateway(two_gateways, shared_database, monkeypatch, tmp_path):
    first, _second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="sdk")
    value = key["plaintext_key"]
    assert status(first, value, app_id) == 404
    from typer.testing import CliRunner

    from agentmark_gateway.cli.main import app

    monkeypatch.setenv("AGENTMARK_DATABASE_URL", shared_database)
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "cli"))
    result = CliRunner().invoke(app, ["keys", "delete", "--app", app_id, key["id"], "--yes"])
    assert result.exit_code == 0, result.output
    within_a_second(lambda: status(first, value, app_id) == 401)


def test_a_template_published_through_one_process_is_served_by_the_other(two_gateways):
    """Each process keeps rendered template answers; a publish elsewhere replaces them."""
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="full-access")
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": app_id}
    params = {"path": "cached.prompt.mdx"}

    def publish(base: str, version: int) -> None:
        body = {"type": "root", "children": [], "version": version}
        httpx.put(f"{base}/v1/templates", params=params, json=body, headers=headers)

    def served(base: str) -> object:
        answer = httpx.get(f"{base}/v1/templates", params=params, headers=headers)
        return answer.json()["data"].get("version") if answer.status_code == 200 else None

    publish(first, 1)
    within_a_second(lambda: served(second) == 1)
    assert served(second) == 1  # now from the second process's cache
    publish(first, 2)
    assert served(first) == 2
    within_a_second(lambda: served(second) == 2)
    assert httpx.delete(f"{first}/v1/templates", params=params, headers=headers).status_code == 204
    within_a_second(lambda: served(second) is None)


def test_usage_counts_are_exact_across_the_two_processes(two_gateways):
    """Each process counts its own requests and writes its own rows; a read adds them
    up. Read through the first process, so the second's counts can only come from the
    rows it wrote."""
    first, second, admin = two_gateways
    app_id, key = setup_key(first, admin, role="sdk")
    value = key["plaintext_key"]
    headers = {"Authorization": value, "X-Agentmark-App-Id": app_id}
    for base, reads, refused in ((first, 3, 1), (second, 2, 2)):
        for _ in range(reads):
            assert status(base, value, app_id) == 404  # template.read held: a 4xx
        for _ in range(refused):
            assert httpx.get(f"{base}/v1/traces", headers=headers).status_code == 403
    assert status(second, value, "app_other") == 401

    def totals() -> dict:
        answer = httpx.get(
            f"{first}/v1/api-keys/{key['id']}/usage",
            headers={**admin, "X-Agentmark-App-Id": app_id},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["data"]["totals"])

    expected = {"2xx": 0, "4xx": 5, "401": 1, "403": 3, "429": 0, "5xx": 0}
    deadline = time.monotonic() + 10
    while totals()["outcomes"] != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.6)  # several more flushes in both processes: nothing may count twice
    final = totals()
    assert final["outcomes"] == expected
    assert final["requests"] == 9
    assert final["permissions"] == {"template.read": 5}
    assert final["refused"] == {"trace.read": 3}
