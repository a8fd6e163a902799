"""Private files: the data folder 0700, the database files and the pepper 0600.

They hold password hashes, key digests and every app's spans. Modes are set
explicitly, whatever the process umask (a usual 022 would leave them readable
by every local user); looser modes found at start are tightened, with a log line.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite's companions of a database in WAL mode; SQLite creates them with the database's mode.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """``path`` exists (with its parents) and only its owner can enter it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    tighten(path, PRIVATE_DIR)


def private_database(path: Path) -> None:
    """The SQLite file exists with mode 0600 before SQLite opens it; its companions too."""
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        # Created here, empty (SQLite reads that as a new database), so no moment at 0644.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    for suffix in SQLITE_SUFFIXES:
        tighten(path.with_name(path.name + suffix), PRIVATE_FILE)


def tighten(path: Path, mode: int) -> None:
    """Drops any permission ``path`` has beyond ``mode`` (a missing path is left alone)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        try:
            os.chmod(path, current & mode)
        except PermissionError:
            # Another user's file this process may use but not change: say so, and go on.
            log.warning(
                "%s has mode %04o; only its owner can tighten it to %04o", path, current, mode
            )
            return
        log.warning("tightened %s from mode %04o to %04o", path, current, current & mode)
