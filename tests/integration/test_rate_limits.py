"""Rate limits per key and per app through the real application.

The limiter's clock is swapped for one the tests move, so windows end when a
test says so; one test runs on the real clock with a half-second window.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER

# A data route an sdk key may call: 404 for a missing template means "let through".
PROBE = "/v1/templates"
PROBE_PARAMS = {"path": "missing.prompt.mdx"}
WINDOW_START = 1_800_000_000.0  # a multiple of 60
RESET = str(int(WINDOW_START + 60))
RATE_LIMITED = {
    "error": {
        "code": "rate_limited",
        "message": "Rate limit exceeded; retry after the window resets",
    }
}


@pytest.fixture
def settings(request, database_url, tmp_path) -> Settings:
    """The suite's settings plus whatever a test passes by indirect parametrization."""
    # Syncs are driven by the tests that look at them, unless a test says otherwise.
    extra: dict[str, Any] = {"rate_limit_sync_seconds": 3600, **getattr(request, "param", {})}
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER, **extra
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(client) -> Clock:
    fake = Clock(WINDOW_START + 20)
    client.app.state.gateway.limiter.clock = fake
    return fake


def probe(client: TestClient, key: dict[str, Any]):
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]}
    return client.get(PROBE, params=PROBE_PARAMS, headers=headers)


def statuses(client: TestClient, key: dict[str, Any], n: int) -> list[int]:
    return [probe(client, key).status_code for _ in range(n)]


def mgmt(admin, app_id: str) -> dict[str, str]:
    return {**admin.headers, "X-Agentmark-App-Id": app_id}


def test_a_key_over_its_own_limit_gets_429_with_retry_after_and_rate_limit_headers(
    admin, client, clock
):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=3)
    assert statuses(client, key, 3) == [404, 404, 404]
    refused = probe(client, key)
    assert refused.status_code == 429
    assert refused.json() == RATE_LIMITED
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == RESET


def test_successful_data_requests_carry_the_rate_limit_headers(admin, client, clock):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=3)
    answers = [probe(client, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert [a.headers.get("X-RateLimit-Remaining") for a in answers] == ["2", "1", "0"]
    assert {a.headers.get("X-RateLimit-Limit") for a in answers} == {"3"}
    assert {a.headers.get("X-RateLimit-Reset") for a in answers} == {RESET}
    assert all("Retry-After" not in a.headers for a in answers)


def test_a_key_without_any_limit_gets_no_rate_limit_headers(admin, client, clock):
    key = admin.create_key(admin.create_app(), role="sdk")
    response = probe(client, key)
    assert response.status_code == 404
    assert not any(name.lower().startswith("x-ratelimit") for name in response.headers)


def test_the_count_starts_over_when_the_window_ends(admin, client, clock):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=2)
    assert statuses(client, key, 3) == [404, 404, 429]
    clock.now = WINDOW_START + 59.9
    assert probe(client, key).status_code == 429
    clock.now = WINDOW_START + 60
    assert statuses(client, key, 3) == [404, 404, 429]


@pytest.mark.parametrize("settings", [{"rate_limit_window_seconds": 0.5}], indirect=True)
def test_a_short_window_on_the_real_clock_resets_by_itself(admin, client):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=2)
    # Start just after a boundary so the two requests land in one window.
    time.sleep(0.5 - time.time() % 0.5 + 0.01)
    assert statuses(client, key, 3) == [404, 404, 429]
    time.sleep(0.5 - time.time() % 0.5 + 0.01)
    assert probe(client, key).status_code == 404


@pytest.mark.parametrize("settings", [{"rate_limit_per_key": 2}], indirect=True)
def test_the_per_key_default_comes_from_settings_and_a_keys_own_limit_overrides_it(
    admin, client, clock
):
    app_id = admin.create_app()
    plain = admin.create_key(app_id, role="sdk")
    generous = admin.create_key(app_id, role="sdk", rate_limit_per_minute=4)
    assert statuses(client, plain, 3) == [404, 404, 429]
    assert probe(client, plain).headers["X-RateLimit-Limit"] == "2"
    assert statuses(client, generous, 5) == [404, 404, 404, 404, 429]


@pytest.mark.parametrize("settings", [{"rate_limit_per_app": 3}], indirect=True)
def test_the_app_limit_is_shared_by_the_apps_keys_and_by_no_other_app(admin, client, clock):
    app_id = admin.create_app()
    first, second = (admin.create_key(app_id, role="sdk") for _ in range(2))
    other_app_key = admin.create_key(admin.create_app(), role="sdk")
    assert statuses(client, first, 2) == [404, 404]
    assert probe(client, second).status_code == 404
    refused = probe(client, second)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Reset"] == RESET
    assert refused.headers["Retry-After"] == "40"
    assert probe(client, first).status_code == 429
    assert statuses(client, other_app_key, 3) == [404, 404, 404]


@pytest.mark.parametrize("settings", [{"rate_limit_per_app": 4}], indirect=True)
def test_a_key_refused_for_its_own_limit_leaves_the_app_budget_to_the_others(admin, client, clock):
    app_id = admin.create_app()
    greedy = admin.create_key(app_id, role="sdk", rate_limit_per_minute=1)
    polite = admin.create_key(app_id, role="sdk")
    assert statuses(client, greedy, 10) == [404] + [429] * 9
    assert statuses(client, polite, 4) == [404, 404, 404, 429]


def test_refused_requests_do_not_reach_the_route(admin, client, clock):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="full-access", rate_limit_per_minute=1)
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": app_id}
    template = {"path": "kept.prompt.mdx"}
    body = {"children": [], "type": "root"}
    assert client.put(PROBE, params=template, json=body, headers=headers).status_code < 300
    assert client.delete(PROBE, params=template, headers=headers).status_code == 429
    clock.now += 60
    assert client.get(PROBE, params=template, headers=headers).status_code == 200


def test_the_limit_can_be_set_changed_and_cleared_through_the_api(admin, client, clock):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", rate_limit_per_minute=5)
    assert key["rate_limit_per_minute"] == 5
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).json()["data"]
    assert shown["rate_limit_per_minute"] == 5
    assert probe(client, key).status_code == 404

    edited = client.patch(
        f"/v1/api-keys/{key['id']}", json={"rate_limit_per_minute": 1}, headers=mgmt(admin, app_id)
    )
    assert edited.status_code == 200 and edited.json()["data"]["rate_limit_per_minute"] == 1
    # The very next request honours the new limit, counting what was already used.
    assert probe(client, key).status_code == 429

    # Editing something else leaves the limit alone.
    renamed = client.patch(
        f"/v1/api-keys/{key['id']}", json={"name": "renamed"}, headers=mgmt(admin, app_id)
    )
    assert renamed.json()["data"]["rate_limit_per_minute"] == 1

    for cleared in (None, 0):
        response = client.patch(
            f"/v1/api-keys/{key['id']}",
            json={"rate_limit_per_minute": cleared},
            headers=mgmt(admin, app_id),
        )
        assert response.status_code == 200
        assert response.json()["data"]["rate_limit_per_minute"] is None
    assert statuses(client, key, 5) == [404] * 5


@pytest.mark.parametrize("bad", [-1, 10_000_001, "many", 2.5, True])
def test_a_bad_rate_limit_is_refused_on_create_and_edit(admin, client, bad):
    app_id = admin.create_app()
    created = client.post(
        "/v1/api-keys",
        json={"name": "x", "role": "sdk", "rate_limit_per_minute": bad},
        headers=mgmt(admin, app_id),
    )
    assert created.status_code == 400
    assert created.json()["error"]["code"] == "invalid_request_body"
    key = admin.create_key(app_id, role="sdk")
    edited = client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"rate_limit_per_minute": bad},
        headers=mgmt(admin, app_id),
    )
    assert edited.status_code == 400


def test_rate_limit_changes_are_in_the_audit_log_with_before_and_after(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", rate_limit_per_minute=60)
    client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"rate_limit_per_minute": 600},
        headers=mgmt(admin, app_id),
    )
    log = client.get("/v1/audit-log", params={"app_id": app_id}, headers=admin.headers)
    events = log.json()["data"]
    update = next(e for e in events if e["action"] == "api_key.update")
    assert update["details"]["changes"]["rate_limit_per_minute"] == {"before": 60, "after": 600}
    assert "allowed_cidrs" not in update["details"]["changes"]
    create = next(e for e in events if e["action"] == "api_key.create")
    assert create["details"]["rate_limit_per_minute"] == 60


def test_roll_keeps_the_rate_limit_and_the_allowlist(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(
        app_id, role="sdk", rate_limit_per_minute=7, allowed_cidrs=["203.0.113.0/24"]
    )
    rolled = client.post(
        f"/v1/api-keys/{key['id']}/roll", json={"grace_seconds": 0}, headers=mgmt(admin, app_id)
    ).json()["data"]
    assert rolled["rate_limit_per_minute"] == 7
    assert rolled["allowed_cidrs"] == ["203.0.113.0/24"]


# -- several processes ---------------------------------------------------------


def shared_store_settings(store: str) -> dict[str, Any]:
    if store == "redis":
        return {"rate_limit_store": "redis", "redis_url": "redis://127.0.0.1:6379/15"}
    return {"rate_limit_store": "database"}


@pytest.fixture
def second_process(settings, client):
    """Another gateway on the same database: its own app, caches and counters."""
    if settings.resolved_rate_limit_store == "redis":
        _require_redis(settings.redis_url)
    with TestClient(create_app(settings)) as other:
        other.app.state.gateway.limiter.clock = client.app.state.gateway.limiter.clock
        yield other


def _require_redis(url: str | None) -> None:
    import os

    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(url or "", socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis at {url} does not answer")
    finally:
        connection.close()


def sync(*clients: TestClient) -> None:
    for each in clients:
        each.portal.call(each.app.state.gateway.limiter.sync)


@pytest.mark.parametrize(
    "settings",
    [shared_store_settings("database"), shared_store_settings("redis")],
    indirect=True,
    ids=["database", "redis"],
)
def test_two_processes_share_one_keys_count(admin, client, clock, second_process):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=4)
    assert probe(client, key).status_code == 404
    assert probe(second_process, key).status_code == 404
    sync(client, second_process, client)
    # Each process has admitted one of its own; two more make four in all.
    assert probe(client, key).status_code == 404
    assert probe(second_process, key).status_code == 404
    sync(client, second_process, client)
    # Counting alone, each would be at two of four; shared, both are at the limit.
    assert probe(client, key).status_code == 429
    assert probe(second_process, key).status_code == 429
    clock.now += 60
    assert probe(second_process, key).status_code == 404


@pytest.mark.parametrize(
    "settings",
    [{**shared_store_settings("database"), "rate_limit_sync_seconds": 0.05}],
    indirect=True,
)
def test_processes_sync_in_the_background_within_a_fraction_of_a_second(
    admin, client, clock, second_process
):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=3)
    bucket = f"key:{key['id']}"
    limiters = [c.app.state.gateway.limiter for c in (client, second_process)]

    def wait_until_both_see(count: int) -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if all(limiter._shared.get(bucket) == count for limiter in limiters):
                return
            time.sleep(0.02)
        raise AssertionError(f"the processes did not agree on {count} within 2 seconds")

    assert probe(client, key).status_code == 404
    assert probe(second_process, key).status_code == 404
    wait_until_both_see(2)
    assert probe(client, key).status_code == 404
    wait_until_both_see(3)
    assert probe(second_process, key).status_code == 429
