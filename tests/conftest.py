"""Shared fixtures: every test gets a fresh migrated database, on SQLite or PostgreSQL.

``AGENTMARK_TEST_DATABASE=postgresql`` runs the suite against the server on
127.0.0.1:5432 (override with ``AGENTMARK_TEST_PG_URL``); the default is SQLite.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.db import migrate
from agentmark_gateway.settings import Settings

BACKEND = os.environ.get("AGENTMARK_TEST_DATABASE", "sqlite")
PG_URL = os.environ.get("AGENTMARK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PEPPER = "test-pepper-not-secret"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """argon2 at the gateway's parameters spends ~0.15 s a hash here, on purpose, and most
    tests create a user and sign in: the suite would spend minutes hashing. Tests hash
    with the least work argon2id allows; the hashes read back the same way (argon2 reads
    the parameters from the hash), so every password path is still the real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "agentmark_gateway.auth.passwords._hasher",
            PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        )
        yield


def _pg_execute(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        url = PG_URL.replace("postgresql://", "postgres://", 1)
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _pg_url(database: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{database}"


@contextmanager
def pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """The name of a new database on the shared server, empty or copied from
    ``template``; dropped after. When the server does not answer, the test skips
    saying so, except in CI, where it fails."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        _pg_execute(f'CREATE DATABASE "{name}"{copy}')
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at {PG_URL} does not answer ({exc}); set it up or use SQLite")
    try:
        yield name
    finally:
        _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_copy(template: str, folder: Path, prefix: str) -> Iterator[str]:
    """The URL of a copy of the migrated ``template`` for this leg's database: a new
    PostgreSQL database (dropped after), or a SQLite file in ``folder``."""
    if BACKEND == "postgresql":
        with pg_database(prefix, template=template) as name:
            yield _pg_url(name)
        return
    path = folder / "gateway.db"
    shutil.copy(template, path)
    yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database that is never used, only copied (SQLite: a file; PostgreSQL:
    a template)."""
    if BACKEND == "postgresql":
        with pg_database("agw_template") as name:
            migrate.upgrade(_pg_url(name))
            yield name
        return
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    yield str(path)


@pytest.fixture(scope="session")
def worker_pg_database(template_database: str) -> Iterator[str]:
    """PostgreSQL: the one database this worker's tests share, emptied before each."""
    with pg_database("agw_tests", template=template_database) as name:
        yield name


@pytest.fixture
def database_url(request: pytest.FixtureRequest, template_database: str, tmp_path: Path) -> str:
    if BACKEND == "postgresql":
        name = request.getfixturevalue("worker_pg_database")
        _empty_pg_database(name)
        return _pg_url(name)
    path = tmp_path / "gateway.db"
    shutil.copy(template_database, path)
    return f"sqlite:///{path}"


def _empty_pg_database(name: str) -> None:
    """Every table but Alembic's emptied, identities restarted: a fresh database in ~50 ms,
    where copying a template takes ~300 ms. Sessions a previous test left behind (a
    gateway process stopping) are ended first, so none holds a lock or sees the change."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_pg_url(name).replace("postgresql://", "postgres://", 1))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            tables = await conn.fetch(
                "SELECT quote_ident(tablename) AS name FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            names = ", ".join(row["name"] for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        key_pepper=PEPPER,
        login_max_failures=5,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@dataclass
class Admin:
    """A signed-in owner and helpers to set up apps and keys through the real API."""

    client: TestClient
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create_app(self, name: str | None = None) -> str:
        response = self.client.post(
            "/v1/apps", json={"name": name or f"app-{uuid.uuid4().hex[:8]}"}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    def create_key(
        self,
        app_id: str,
        *,
        role: str | None = None,
        permissions: list[str] | None = None,
        name: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name or f"key-{uuid.uuid4().hex[:8]}", **extra}
        if role is not None:
            body["role"] = role
        if permissions is not None:
            body["permissions"] = permissions
        response = self.client.post(
            "/v1/api-keys", json=body, headers={**self.headers, "X-Agentmark-App-Id": app_id}
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


def sign_in(client: TestClient, email: str, password: str) -> str:
    response = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["token"])


def add_user(
    client: TestClient, email: str, role: str, password: str = "correct horse battery"
) -> str:
    """Creates a user straight through the service (as the CLI does) and signs in."""
    import asyncio

    from agentmark_gateway.users.service import create_user

    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def work() -> None:
        async with gateway.sessionmaker() as session:
            await create_user(session, email=email, role=role, password=password)
            await session.commit()

    client.portal.call(work) if hasattr(client, "portal") and client.portal else asyncio.run(work())  # type: ignore[attr-defined]
    return sign_in(client, email, password)


@pytest.fixture
def admin(client: TestClient) -> Admin:
    return Admin(client, add_user(client, "owner@example.com", "owner"))


@pytest.fixture
def key_headers() -> Callable[[dict[str, Any]], dict[str, str]]:
    def headers(key: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": key["app_id"]}

    return headers


def altered(raw_key: str) -> str:
    """The key with its last character changed: a different key, whatever that character was."""
    return raw_key[:-1] + ("y" if raw_key.endswith("x") else "x")
