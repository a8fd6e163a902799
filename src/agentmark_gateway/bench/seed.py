"""A fresh database for each run, and the app, user and keys the scenarios use."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy import func, select

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys import service as keys
from agentmark_gateway.apps import service as apps
from agentmark_gateway.audit.service import CLI_ACTOR
from agentmark_gateway.db import migrate
from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.traces.models import Span
from agentmark_gateway.users import service as users

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Seeded:
    app_id: str
    sdk_key: str  # trace.ingest, template.read, score.write
    admin_key: str  # full access: publishes the template
    no_template_key: str  # trace.read only: 403 on GET /v1/templates
    unknown_key: str  # well formed, valid checksum, never stored: 401


async def _seed(url: str, pepper: bytes) -> Seeded:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            await users.create_user(
                session,
                email="bench@example.com",
                role="owner",
                password=secrets.token_urlsafe(16),
            )
            await session.commit()
            app = await apps.create_app(session, actor=CLI_ACTOR, name="bench")

            async def key(name: str, role: str | None, permissions: list[str] | None) -> str:
                new = await keys.create_key(
                    session,
                    actor=CLI_ACTOR,
                    pepper=pepper,
                    app_id=app.id,
                    name=name,
                    role=role,
                    permissions=permissions,
                )
                return new.plaintext

            return Seeded(
                app_id=app.id,
                sdk_key=await key("bench-sdk", "sdk", None),
                admin_key=await key("bench-admin", "full-access", None),
                no_template_key=await key("bench-reader", None, ["trace.read"]),
                unknown_key=keygen.generate(),
            )
    finally:
        await engine.dispose()


def prepare(url: str, pepper: bytes) -> Seeded:
    """Migrate ``url`` to the newest schema and add the bench app and keys."""
    migrate.upgrade(url)
    return asyncio.run(_seed(url, pepper))


async def _count_spans(url: str, app_id: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(Span).where(Span.app_id == app_id)
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def count_spans(url: str, app_id: str) -> int:
    return asyncio.run(_count_spans(url, app_id))


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql://", "postgres://", 1)


async def _pg_admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_url(url), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _pg_version(url: str) -> str:
    connection = await asyncpg.connect(_asyncpg_url(url), timeout=5)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def postgres_version(admin_url: str) -> str:
    return asyncio.run(_pg_version(admin_url))


@contextmanager
def postgres_database(admin_url: str = DEFAULT_PG_URL) -> Iterator[str]:
    """A new database ``agw_bench_<random>`` on the server of ``admin_url``, dropped after."""
    name = f"agw_bench_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
