"""Fixtures of the resilience tests: databases they choose themselves.

The several-process, load, shutdown and rotation tests model a production
deployment, so they run on PostgreSQL in both legs of the suite (a fresh
database on the shared server per test, copied from a migrated template). The
outage test gets a private cluster it may stop; the SQLite busy test makes its
own SQLite file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from agentmark_gateway.db import migrate
from tests.conftest import PG_URL, _pg_execute, _pg_url
from tests.resilience.cluster import PrivatePostgres, why_unavailable
from tests.resilience.databases import fresh_pg_database


def _unavailable(reason: str) -> None:
    """In CI a missing prerequisite fails the test; elsewhere it skips, saying why."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"agw_resilience_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    try:
        _pg_execute(f'DROP DATABASE IF EXISTS "{name}"')
    except OSError as exc:
        _unavailable(f"PostgreSQL at {PG_URL} does not answer ({exc}); these tests need it")
    _pg_execute(f'CREATE DATABASE "{name}"')
    migrate.upgrade(_pg_url(name))
    yield name
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated database on the shared PostgreSQL server."""
    with fresh_pg_database(pg_template) as url:
        yield url


@pytest.fixture
def empty_pg_url(pg_template: str) -> Iterator[str]:
    """A database with no tables at all, as on a deployment's first start."""
    name = f"agw_empty_{os.getpid()}_{time.monotonic_ns()}"
    _pg_execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test alone, started; removed after."""
    reason = why_unavailable()
    if reason:
        _unavailable(reason)
    cluster = PrivatePostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
