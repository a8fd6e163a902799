"""The key list a team needs: search, sort, filters and paging, through the API and the CLI."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, get_args

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from agentmark_gateway.api_keys import service as keys_service
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.api_keys.router import RoleFilter, SortField
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.cli.main import app as cli_app
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.permissions.catalog import ROLES
from tests.conftest import PEPPER


def mgmt(admin, app_id: str) -> dict[str, str]:
    return {**admin.headers, "X-Agentmark-App-Id": app_id}


def in_db(client: TestClient, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def run() -> Any:
        async with gateway.sessionmaker() as session:
            result = await work(session)
            await session.commit()
            return result

    return client.portal.call(run)  # type: ignore[attr-defined]


def backdate(client: TestClient, key_id: str, *, made: int, used: int | None) -> None:
    """Make a key look ``made`` days old and last used ``used`` days ago (None: never)."""
    now = utcnow()
    last_used = None if used is None else now - timedelta(days=used)

    async def work(session: AsyncSession) -> None:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(created_at=now - timedelta(days=made), last_used_at=last_used)
        )

    in_db(client, work)


def names(client: TestClient, admin, app_id: str, **params: Any) -> list[str]:
    response = client.get("/v1/api-keys", params=params, headers=mgmt(admin, app_id))
    assert response.status_code == 200, response.text
    return [key["name"] for key in response.json()["data"]]


def test_the_documented_choices_are_the_services(client):
    assert set(get_args(SortField)) == set(keys_service.SORTS)
    assert set(get_args(RoleFilter)) == set(ROLES)
    listing = client.get("/v1/openapi.json").json()["paths"]["/v1/api-keys"]["get"]
    documented = {p["name"] for p in listing["parameters"]}
    assert {"search", "sort", "role", "expiring_soon", "unused_days"} <= documented


def test_search_sort_and_filter_by_role_and_expiry(admin, client):
    app_id = admin.create_app()
    soon = (utcnow() + timedelta(days=3)).isoformat()
    later = (utcnow() + timedelta(days=60)).isoformat()
    alpha = admin.create_key(app_id, role="sdk", name="alpha-sdk")
    beta = admin.create_key(app_id, role="read-only", name="Beta-reader", expires_at=soon)
    admin.create_key(app_id, role="full-access", name="gamma_ci", expires_at=later)
    admin.create_key(app_id, permissions=["trace.read"], name="delta%worker")

    assert names(client, admin, app_id, search="BETA") == ["Beta-reader"]
    # LIKE's wildcards are plain characters in a search.
    assert names(client, admin, app_id, search="_") == ["gamma_ci"]
    assert names(client, admin, app_id, search="%") == ["delta%worker"]
    assert names(client, admin, app_id, search="nothing") == []

    assert names(client, admin, app_id, sort="name") == [
        "alpha-sdk",
        "Beta-reader",
        "delta%worker",
        "gamma_ci",
    ]
    assert names(client, admin, app_id, sort="-name")[0] == "gamma_ci"
    assert names(client, admin, app_id)[0] == "delta%worker"  # newest first by default
    assert names(client, admin, app_id, sort="created")[0] == "alpha-sdk"

    backdate(client, alpha["id"], made=2, used=1)
    backdate(client, beta["id"], made=2, used=0)
    by_use = names(client, admin, app_id, sort="-last_used")
    assert by_use[:2] == ["Beta-reader", "alpha-sdk"]  # never used comes last
    assert names(client, admin, app_id, sort="last_used")[2:] == ["alpha-sdk", "Beta-reader"]

    assert names(client, admin, app_id, role="sdk") == ["alpha-sdk"]
    assert names(client, admin, app_id, role="custom") == ["delta%worker"]
    assert names(client, admin, app_id, expiring_soon="true") == ["Beta-reader"]
    listed = client.get(
        "/v1/api-keys", params={"search": "a", "role": "sdk"}, headers=mgmt(admin, app_id)
    )
    assert listed.json()["pagination"]["total"] == 1


def test_unused_days_lists_keys_neither_used_nor_made_in_that_time(admin, client):
    app_id = admin.create_app()
    stale = admin.create_key(app_id, role="sdk", name="stale")
    forgotten = admin.create_key(app_id, role="sdk", name="forgotten")
    busy = admin.create_key(app_id, role="sdk", name="busy")
    admin.create_key(app_id, role="sdk", name="brand-new")  # never used, but made today
    backdate(client, stale["id"], made=90, used=40)
    backdate(client, forgotten["id"], made=60, used=None)
    backdate(client, busy["id"], made=90, used=1)

    assert sorted(names(client, admin, app_id, unused_days=30)) == ["forgotten", "stale"]
    assert names(client, admin, app_id, unused_days=50) == ["forgotten"]
    assert sorted(names(client, admin, app_id, unused_days=1)) == ["busy", "forgotten", "stale"]


def test_bad_list_parameters_are_400s_in_the_envelope(admin, client):
    app_id = admin.create_app()
    for params in (
        {"sort": "digest"},
        {"role": "root"},
        {"unused_days": "0"},
        {"unused_days": "many"},
        {"expiring_soon": "perhaps"},
    ):
        response = client.get("/v1/api-keys", params=params, headers=mgmt(admin, app_id))
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "invalid_query_params", params


def test_paging_reaches_every_one_of_1200_keys(admin, client):
    app_id = admin.create_app()
    started = time.monotonic()

    async def make(session: AsyncSession) -> None:
        # The service's own minting, added in one batch: 1,200 create calls would
        # spend the test's time on round trips, not on the list.
        session.add_all(
            keys_service.mint(
                pepper=PEPPER.encode(),
                app_id=app_id,
                name=f"key-{number:04}",
                role="sdk",
                permissions=[],
                created_by=CLI_ACTOR.label,
                expires_at=None,
            ).key
            for number in range(1200)
        )

    in_db(client, make)
    made_in = time.monotonic() - started

    seen: list[str] = []
    for offset in (0, 1000):
        response = client.get(
            "/v1/api-keys",
            params={"sort": "name", "limit": 1000, "offset": offset},
            headers=mgmt(admin, app_id),
        )
        body = response.json()
        assert body["pagination"]["total"] == 1200
        seen += [key["name"] for key in body["data"]]
    assert seen == [f"key-{number:04}" for number in range(1200)]
    assert made_in < 20, f"making 1,200 keys took {made_in:.1f} s"


def test_cli_lists_unused_keys_and_every_key_past_a_page(
    admin, client, database_url, monkeypatch, tmp_path
):
    app_id = admin.create_app(name="shop")
    old = admin.create_key(app_id, role="sdk", name="old-ci")
    admin.create_key(app_id, role="sdk", name="fresh")
    backdate(client, old["id"], made=45, used=31)
    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", PEPPER)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "cli-data"))
    runner = CliRunner()

    result = runner.invoke(cli_app, ["keys", "list", "--app", "shop", "--unused-days", "30"])
    assert result.exit_code == 0, result.output
    assert "old-ci" in result.output and "fresh" not in result.output

    monkeypatch.setattr("agentmark_gateway.cli.keys.LIST_PAGE", 1)  # pages of one key
    result = runner.invoke(cli_app, ["keys", "list", "--app", "shop", "--sort", "name"])
    assert result.exit_code == 0, result.output
    assert result.output.index("fresh") < result.output.index("old-ci")

    result = runner.invoke(cli_app, ["keys", "list", "--app", "shop", "--sort", "digest"])
    assert result.exit_code != 0
