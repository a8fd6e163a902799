"""``db backup`` and ``db restore``: the database to one file and back.

SQLite: SQLite's online backup copies the database inside one read transaction,
so the copy is the database as of one moment, whole, while the gateway goes on
writing beside it (WAL mode lets the writer through). A restore copies the
backup next to the database and moves it into place in one rename.

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists``,
run here with the same guards as for SQLite (the commands are in
docs/deploy.md for hosts that run them by hand). pg_dump reads in one snapshot,
so it too is safe while the gateway serves.

Either way the key pepper is not in the backup: keys verify after a restore only
with the pepper they were made with, which the operator keeps apart.

Backups hold password hashes, key digests and every app's spans: they are
written 0600, through a temporary file, and only over an existing file when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from agentmark_gateway.db import revisions
from agentmark_gateway.db.engine import async_url, make_engine
from agentmark_gateway.filemodes import PRIVATE_FILE, private_dir

# How long a command waits for the SQLite database's lock (a busy writer) or for
# PostgreSQL to answer.
WAIT_SECONDS = 10.0
# SQLite's files beside a database; after a restore, those of the old database
# must not stay, or SQLite would replay them onto the new one.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
PG_DUMP = ("pg_dump", "--format=custom")
PG_RESTORE = ("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction")


class BackupError(Exception):
    """A backup or restore that was refused or failed; the message says why and what to do."""


def backup(database_url: str, file: Path, *, force: bool = False) -> str:
    """Copies the database at ``database_url`` to ``file``; returns its schema revision."""
    if file.exists() and not force:
        raise BackupError(f"{file} exists: pass --force to replace it")
    if not file.parent.is_dir():
        raise BackupError(f"folder {file.parent} does not exist")
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _backup_sqlite(sqlite_path(url), file)
    return _backup_postgres(url, file)


def restore(database_url: str, file: Path, *, force: bool = False) -> str:
    """Replaces the database at ``database_url`` with the backup ``file``; returns its revision.

    A database that already holds tables is replaced only with ``force``; one in
    use (a gateway running on it) never.
    """
    if not file.is_file():
        raise BackupError(f"no backup at {file}")
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _restore_sqlite(file, sqlite_path(url), force=force)
    return _restore_postgres(url, file, force=force)


def checked_revision(revision: str, source: Path) -> str:
    """``revision`` when this version can serve it (after ``db upgrade`` if older)."""
    if revision not in revisions.known():
        raise BackupError(
            f"{source} has schema {revision}, made by a newer version of the gateway: "
            "restore it with that version"
        )
    return revision


# SQLite


def sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.query.get("uri"):
        raise BackupError("only a SQLite database in a file can be backed up or restored")
    return Path(url.database)


def _backup_sqlite(source: Path, file: Path) -> str:
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    with _private_temp(file) as temp:
        # Opened for writing like the gateway's own connections (it exists, so
        # nothing is created): a read-only one may not join a database in WAL mode.
        with closing(sqlite3.connect(source, timeout=WAIT_SECONDS)) as live:
            _revision(live, source)
            _copy(live, temp)
        revision = _checked_sqlite(temp, shown_as=file)
        _move_into_place(temp, file)
    return revision


def _restore_sqlite(file: Path, target: Path, *, force: bool) -> str:
    revision = checked_revision(_checked_sqlite(file, shown_as=file), file)
    if not target.parent.exists():
        private_dir(target.parent)
    with _claimed(target, force=force), _private_temp(target) as temp:
        with _read_only(file) as backup_file:
            _copy(backup_file, temp)
        for suffix in SQLITE_COMPANIONS:
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        _move_into_place(temp, target)
    return revision


def _copy(source: sqlite3.Connection, temp: Path) -> None:
    """The whole database in one step: one read transaction, so one moment's state."""
    with closing(sqlite3.connect(temp)) as copy:
        source.backup(copy, pages=-1)
        # One self-contained file: the copy keeps no WAL beside it.
        copy.execute("PRAGMA journal_mode=DELETE")


def _checked_sqlite(path: Path, *, shown_as: Path) -> str:
    """The schema revision of a sound gateway database at ``path``."""
    with _read_only(path) as connection:
        try:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            if "malformed" in str(exc):
                raise BackupError(f"{shown_as} is damaged ({exc})") from None
            raise BackupError(f"{shown_as} is not a SQLite database ({exc})") from None
        if problems != ["ok"]:
            raise BackupError(f"{shown_as} is damaged: {problems[0]}")
        return _revision(connection, shown_as)


def _revision(connection: sqlite3.Connection, shown_as: Path) -> str:
    try:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{shown_as} is not a gateway database ({exc})") from None
    if len(rows) != 1:
        raise BackupError(f"{shown_as} is not a gateway database (no schema revision)")
    return str(rows[0][0])


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that can neither write ``path`` nor create it."""
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=WAIT_SECONDS
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    with closing(connection):
        yield connection


@contextlib.contextmanager
def _claimed(target: Path, *, force: bool) -> Iterator[None]:
    """Holds the database about to be replaced so that nothing uses it meanwhile.

    The gateway keeps SQLite in WAL mode, which cannot be left while any other
    connection has the database open (even an idle one of a running gateway):
    leaving it is the test that the database is free, and the exclusive lock
    taken after it keeps a gateway that starts now waiting until the swap is done.
    """
    if not target.exists() or target.stat().st_size == 0:
        yield
        return
    connection = sqlite3.connect(target, timeout=0, isolation_level=None)
    try:
        _hold(connection, target, force=force)
        yield
    finally:
        connection.close()


def _hold(connection: sqlite3.Connection, target: Path, *, force: bool) -> None:
    try:
        mode = connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise BackupError(f"cannot open {target}: {exc}") from None
        mode = "wal"
    except sqlite3.DatabaseError:
        if force:
            return  # not a database: nothing to hold, and asked to replace it
        raise BackupError(
            f"{target} is not a SQLite database: pass --force to replace it"
        ) from None
    if mode != "delete":
        raise BackupError(
            f"{target} is in use: stop the gateway (every serve process) before restoring"
        )
    tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
    if tables.fetchone()[0] and not force:
        raise BackupError(
            f"{target} already holds a database: pass --force to replace it "
            "(back it up first if it may be needed)"
        )
    connection.execute("BEGIN EXCLUSIVE")


# PostgreSQL


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """The URL pg_dump and pg_restore take, and their environment.

    The password goes in ``PGPASSWORD``, not on the command line, where any local
    user could read it in the process list.
    """
    query = dict(url.query)
    if "ssl" in query and "sslmode" not in query:
        query["sslmode"] = query.pop("ssl")  # asyncpg's name for libpq's sslmode
    # URL.set() cannot take the password away (None means "keep"): build it anew.
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=query,
    )
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return plain.render_as_string(hide_password=False), env


def _backup_postgres(url: URL, file: Path) -> str:
    revision, _, _ = asyncio.run(_postgres_state(url))
    if revision is None:
        raise BackupError("the database has no gateway schema: nothing to back up")
    target, env = libpq_target(url)
    with _private_temp(file) as temp:
        _run([*PG_DUMP, f"--file={temp}", target], env)
        _archive_revision(temp, shown_as=file)
        _move_into_place(temp, file)
    return revision


def _restore_postgres(url: URL, file: Path, *, force: bool) -> str:
    revision = checked_revision(_archive_revision(file, shown_as=file), file)
    current, others, tables = asyncio.run(_postgres_state(url))
    if others:
        raise BackupError(
            f"{others} other session(s) are connected to the database: stop the gateway "
            "(every process) before restoring"
        )
    if tables and not force:
        raise BackupError(
            "the database already holds tables: pass --force to replace them "
            "(back it up first if it may be needed)"
        )
    if tables and current != revision:
        # --clean drops only the backup's tables: a newer schema's own would stay
        # behind and break the next upgrade.
        raise BackupError(
            f"the database is at schema {current}, the backup at {revision}: restore it "
            "into an empty database instead"
        )
    target, env = libpq_target(url)
    _run([*PG_RESTORE, f"--dbname={target}", str(file)], env)
    return revision


async def _postgres_state(url: URL) -> tuple[str | None, int, int]:
    """The schema revision (None without one), other sessions on the database, and tables."""
    engine = make_engine(url.render_as_string(hide_password=False), timeout=WAIT_SECONDS)
    try:
        async with engine.connect() as connection:
            others = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            )
            tables = await connection.scalar(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
            )
            revision = None
            if await connection.scalar(text("SELECT to_regclass('alembic_version')")):
                revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except (OSError, SQLAlchemyError) as exc:
        raise BackupError(f"the database does not answer: {exc}") from None
    finally:
        await engine.dispose()
    return revision, int(others or 0), int(tables or 0)


def _archive_revision(file: Path, *, shown_as: Path) -> str:
    """The schema revision in a pg_dump archive, which must be one of the gateway's."""
    listing = _run(["pg_restore", "--list", str(file)], dict(os.environ), what=shown_as)
    if " TABLE DATA " not in listing or " alembic_version " not in listing:
        raise BackupError(f"{shown_as} is not a backup of a gateway database")
    data = _run(
        ["pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(file)],
        dict(os.environ),
        what=shown_as,
    )
    # COPY public.alembic_version (version_num) FROM stdin;\n<revision>\n\.
    lines = data.split("COPY ", 1)[-1].splitlines()
    if len(lines) < 3 or lines[2] != "\\.":
        raise BackupError(f"{shown_as} is not a backup of a gateway database (no schema revision)")
    return lines[1]


def _run(command: list[str], env: dict[str, str], *, what: Path | None = None) -> str:
    """Runs a PostgreSQL client tool; its error, when it fails, becomes the message."""
    if shutil.which(command[0]) is None:
        raise BackupError(
            f"{command[0]} is not installed: install PostgreSQL's client tools (the "
            "server's major version or newer), or run the commands in docs/deploy.md "
            "where they are"
        )
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        problem = result.stderr.strip() or f"exit status {result.returncode}"
        if what is not None:
            raise BackupError(f"{what} is not a readable pg_dump archive: {problem}")
        raise BackupError(f"{command[0]} failed: {problem}")
    return result.stdout


# Files


@contextlib.contextmanager
def _private_temp(beside: Path) -> Iterator[Path]:
    """A new empty file (0600) in ``beside``'s folder, removed unless moved into place."""
    fd, name = tempfile.mkstemp(dir=beside.parent, prefix=f".{beside.name}.", suffix=".tmp")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _move_into_place(temp: Path, file: Path) -> None:
    """``temp`` becomes ``file`` in one rename, on disk before this returns."""
    os.chmod(temp, PRIVATE_FILE)
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, file)
    folder = os.open(file.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
