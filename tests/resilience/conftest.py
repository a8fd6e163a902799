"""Fixtures of the resilience tests: databases they choose themselves.

The several-process, load, shutdown and rotation tests model a production
deployment on PostgreSQL (a fresh database on the shared server per test, copied
from a migrated template), whichever leg runs them: scripts/test runs this folder
once, in the first leg. The outage test gets a private cluster it may stop; the
SQLite busy and read-only tests make their own SQLite files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agentmark_gateway.db import migrate
from tests.conftest import _pg_url, pg_database
from tests.resilience.cluster import PrivatePostgres, why_unavailable


def _unavailable(reason: str) -> None:
    """In CI a missing prerequisite fails the test; elsewhere it skips, saying why."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    with pg_database("agw_resilience") as name:
        migrate.upgrade(_pg_url(name))
        yield name


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated database on the shared PostgreSQL server."""
    with pg_database("agw", template=pg_template) as name:
        yield _pg_url(name)


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A database with no tables at all, as on a deployment's first start."""
    with pg_database("agw_empty") as name:
        yield _pg_url(name)


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
