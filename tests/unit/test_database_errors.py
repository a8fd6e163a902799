"""Which database errors mean "the database cannot serve now" (503), and which do not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from agentmark_gateway.error_handlers import _looks_like_outage


class DriverError(Exception):
    """Stands in for a driver's error as SQLAlchemy wraps it: a message and a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def wrapped(message: str, sqlstate: str | None = None) -> DBAPIError:
    return DBAPIError("SELECT 1", None, DriverError(message, sqlstate))


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ("the database system is starting up", "57P03"),
        ("the database system is shutting down", "57P03"),
        ("terminating connection due to administrator command", "57P01"),
        ("sorry, too many clients already", "53300"),
        ("connection does not exist", "08003"),
        ("connection was closed in the middle of operation", None),
        ("database is locked", None),
    ],
)
def test_a_server_that_cannot_serve_now_is_an_outage(message, sqlstate):
    assert _looks_like_outage(wrapped(message, sqlstate))


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ('duplicate key value violates unique constraint "apps_pkey"', "23505"),
        ("invalid byte sequence for encoding", "22021"),
        ("canceling statement due to statement timeout", "57014"),
    ],
)
def test_an_error_of_the_statement_is_not_an_outage(message, sqlstate):
    assert not _looks_like_outage(wrapped(message, sqlstate))
