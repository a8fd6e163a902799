"""IP allowlists per key, and X-Forwarded-For believed only from trusted proxies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER

PROBE = "/v1/templates"
PROBE_PARAMS = {"path": "missing.prompt.mdx"}
NOT_AUTHORIZED = {"error": {"code": "unauthorized", "message": "Not authorized"}}
OFFICE_V4 = "203.0.113.0/24"
OFFICE_V6 = "2001:db8::/32"


@pytest.fixture
def settings(request, database_url, tmp_path) -> Settings:
    extra: dict[str, Any] = getattr(request, "param", {})
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, key_pepper=PEPPER, **extra
    )


@pytest.fixture
def from_address(client) -> Iterator[Callable[[str], TestClient]]:
    """A client whose requests come from ``host`` (the socket peer the server sees).

    It shares the running app's event loop, as a second connection to one server would.
    """
    made: list[TestClient] = []

    def make(host: str) -> TestClient:
        other = TestClient(client.app, client=(host, 50000))
        other.portal = client.portal
        made.append(other)
        return other

    yield make
    for other in made:
        other.portal = None
        other.close()


def probe(client: TestClient, key: dict[str, Any], **headers: str):
    sent = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"], **headers}
    return client.get(PROBE, params=PROBE_PARAMS, headers=sent)


def mgmt(admin, app_id: str) -> dict[str, str]:
    return {**admin.headers, "X-Agentmark-App-Id": app_id}


def test_an_ipv4_allowlist_lets_its_range_in_and_refuses_the_rest(admin, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=[OFFICE_V4])
    assert key["allowed_cidrs"] == [OFFICE_V4]
    assert probe(from_address("203.0.113.7"), key).status_code == 404
    assert probe(from_address("203.0.113.255"), key).status_code == 404
    refused = probe(from_address("198.51.100.7"), key)
    assert refused.status_code == 401
    assert refused.json() == NOT_AUTHORIZED
    assert probe(from_address("2001:db8::1"), key).status_code == 401


def test_an_ipv6_allowlist_lets_its_range_in_and_refuses_the_rest(admin, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=[OFFICE_V6])
    assert probe(from_address("2001:db8::1"), key).status_code == 404
    assert probe(from_address("2001:db8:ffff::42"), key).status_code == 404
    assert probe(from_address("2001:db9::1"), key).status_code == 401
    assert probe(from_address("203.0.113.7"), key).status_code == 401


def test_a_mixed_allowlist_and_single_addresses_work_together(admin, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=["192.0.2.10", OFFICE_V6])
    assert key["allowed_cidrs"] == ["192.0.2.10/32", OFFICE_V6]
    assert probe(from_address("192.0.2.10"), key).status_code == 404
    assert probe(from_address("192.0.2.11"), key).status_code == 401
    assert probe(from_address("2001:db8::9"), key).status_code == 404
    # A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6.
    assert probe(from_address("::ffff:192.0.2.10"), key).status_code == 404


def test_the_refusal_is_the_same_401_as_for_an_unknown_key(admin, client, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=[OFFICE_V4])
    elsewhere = from_address("198.51.100.7")
    refused = probe(elsewhere, key)
    unknown = probe(elsewhere, {**key, "plaintext_key": key["plaintext_key"][:-6] + "AAAAAA"})
    assert refused.status_code == unknown.status_code == 401
    assert refused.json() == unknown.json() == NOT_AUTHORIZED


def test_a_key_without_an_allowlist_works_from_anywhere(admin, client, from_address):
    key = admin.create_key(admin.create_app(), role="sdk")
    assert key["allowed_cidrs"] is None
    assert probe(client, key).status_code == 404  # peer "testclient": not even an address
    assert probe(from_address("198.51.100.7"), key).status_code == 404
    assert probe(from_address("2001:db9::1"), key).status_code == 404


def test_an_allowlisted_key_refuses_a_peer_that_is_not_an_address(admin, client):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=["0.0.0.0/0", "::/0"])
    assert probe(client, key).status_code == 401


def test_a_refused_address_does_not_use_the_rate_limit(admin, from_address):
    key = admin.create_key(
        admin.create_app(), role="sdk", rate_limit_per_minute=2, allowed_cidrs=[OFFICE_V4]
    )
    outsider = from_address("198.51.100.7")
    for _ in range(5):
        assert probe(outsider, key).status_code == 401
    insider = from_address("203.0.113.7")
    assert [probe(insider, key).status_code for _ in range(3)] == [404, 404, 429]


def test_forwarded_for_is_ignored_without_trusted_proxies(admin, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=[OFFICE_V4])
    proxy = from_address("10.0.0.2")
    assert probe(proxy, key, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
    # Nor can an allowed client be framed as another by a forged header.
    allowed = from_address("203.0.113.7")
    assert probe(allowed, key, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 404


@pytest.mark.parametrize(
    "settings", [{"trusted_proxies": ["10.0.0.0/8", "fd00::/8"]}], indirect=True
)
def test_forwarded_for_names_the_client_only_when_a_trusted_proxy_sends_it(admin, from_address):
    key = admin.create_key(admin.create_app(), role="sdk", allowed_cidrs=[OFFICE_V4])
    proxy, proxy_v6 = from_address("10.0.0.2"), from_address("fd00::2")
    stranger = from_address("192.0.2.1")

    def via(client: TestClient, chain: str) -> int:
        return probe(client, key, **{"X-Forwarded-For": chain}).status_code

    assert via(proxy, "203.0.113.7") == 404
    assert via(proxy_v6, "203.0.113.7") == 404
    assert via(proxy, "198.51.100.7") == 401
    # Two trusted hops: the walk goes past both to the client.
    assert via(proxy, "203.0.113.7, 10.9.9.9") == 404
    # A client cannot sneak in by writing an allowed address to the left.
    assert via(proxy, "203.0.113.7, 198.51.100.7") == 401
    # An unreadable hop hides the client: refused.
    assert via(proxy, "203.0.113.7, not-an-ip") == 401
    # The proxy itself is not in the allowlist and sent no header.
    assert probe(proxy, key).status_code == 401
    # An untrusted peer's header is still ignored.
    assert via(stranger, "203.0.113.7") == 401


def test_the_allowlist_is_edited_through_the_api_and_applies_on_the_next_request(
    admin, client, from_address
):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", allowed_cidrs=[OFFICE_V4])
    office, home = from_address("203.0.113.7"), from_address("198.51.100.7")
    assert probe(home, key).status_code == 401

    def patch(body: dict[str, Any]):
        return client.patch(f"/v1/api-keys/{key['id']}", json=body, headers=mgmt(admin, app_id))

    edited = patch({"allowed_cidrs": [OFFICE_V4, "198.51.100.0/24"]})
    assert edited.status_code == 200
    assert edited.json()["data"]["allowed_cidrs"] == [OFFICE_V4, "198.51.100.0/24"]
    assert probe(home, key).status_code == 404

    patch({"allowed_cidrs": ["198.51.100.0/24"]})
    assert probe(office, key).status_code == 401

    # Another edit leaves the allowlist alone.
    assert patch({"name": "renamed"}).json()["data"]["allowed_cidrs"] == ["198.51.100.0/24"]

    for cleared in ([], None):
        response = patch({"allowed_cidrs": cleared})
        assert response.status_code == 200 and response.json()["data"]["allowed_cidrs"] is None
    assert probe(office, key).status_code == 404
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).json()["data"]
    assert shown["allowed_cidrs"] is None


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
        ("office", "'office' is not a CIDR"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR"),
        ("2001:db8::/129", "'2001:db8::/129' is not a CIDR"),
    ],
)
def test_a_bad_cidr_is_refused_by_name_on_create_and_edit(admin, client, bad, named):
    app_id = admin.create_app()
    created = client.post(
        "/v1/api-keys",
        json={"name": "x", "role": "sdk", "allowed_cidrs": [OFFICE_V4, bad]},
        headers=mgmt(admin, app_id),
    )
    assert created.status_code == 400
    assert created.json()["error"]["code"] == "invalid_allowed_cidrs"
    assert named in created.json()["error"]["message"]
    key = admin.create_key(app_id, role="sdk", allowed_cidrs=[OFFICE_V4])
    edited = client.patch(
        f"/v1/api-keys/{key['id']}", json={"allowed_cidrs": [bad]}, headers=mgmt(admin, app_id)
    )
    assert edited.status_code == 400 and named in edited.json()["error"]["message"]
    shown = client.get(f"/v1/api-keys/{key['id']}", headers=mgmt(admin, app_id)).json()["data"]
    assert shown["allowed_cidrs"] == [OFFICE_V4]


def test_a_huge_allowlist_is_refused(admin, client):
    app_id = admin.create_app()
    many = [f"10.0.{i // 256}.{i % 256}" for i in range(101)]
    response = client.post(
        "/v1/api-keys",
        json={"name": "x", "role": "sdk", "allowed_cidrs": many},
        headers=mgmt(admin, app_id),
    )
    assert response.status_code == 400


def test_allowlist_changes_are_in_the_audit_log_with_what_was_added_and_removed(admin, client):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk", allowed_cidrs=[OFFICE_V4, "192.0.2.0/24"])
    client.patch(
        f"/v1/api-keys/{key['id']}",
        json={"allowed_cidrs": [OFFICE_V4, OFFICE_V6]},
        headers=mgmt(admin, app_id),
    )
    log = client.get("/v1/audit-log", params={"app_id": app_id}, headers=admin.headers)
    events = log.json()["data"]
    update = next(e for e in events if e["action"] == "api_key.update")
    details = update["details"]
    assert details["changes"]["allowed_cidrs"] == {
        "before": [OFFICE_V4, "192.0.2.0/24"],
        "after": [OFFICE_V4, OFFICE_V6],
    }
    assert details["allowed_cidrs_added"] == [OFFICE_V6]
    assert details["allowed_cidrs_removed"] == ["192.0.2.0/24"]
    assert "rate_limit_per_minute" not in details["changes"]
    create = next(e for e in events if e["action"] == "api_key.create")
    assert create["details"]["allowed_cidrs"] == [OFFICE_V4, "192.0.2.0/24"]
