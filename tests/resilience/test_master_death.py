"""``serve --workers 2``: when the master is killed outright, its workers go too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PEPPER
from tests.servers import free_port

pytestmark = pytest.mark.slow

GATEWAY_BIN = Path(sys.executable).parent / "agentmark-gateway"
# Idle workers stop in well under a second; this allows for a loaded machine.
PATIENCE = 15.0


def _workers_of(pid: int) -> list[int]:
    """The server workers among ``pid``'s live children (uvicorn spawns them)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _serving(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not serving in time:\n{log.read_text()}")


def test_killing_the_master_with_sigkill_leaves_no_worker_and_frees_the_port(
    database_url, tmp_path
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "AGENTMARK_DATABASE_URL": database_url,
        "AGENTMARK_DATA_DIR": str(tmp_path / "data"),
        "AGENTMARK_KEY_PEPPER": PEPPER,
        "AGENTMARK_LOG_LEVEL": "warning",
    }
    with log.open("wb") as out:
        master = subprocess.Popen(
            [str(GATEWAY_BIN), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    workers: list[int] = []
    try:
        _serving(base, master, log)
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = _workers_of(master.pid)
            time.sleep(0.1)
        assert len(workers) == 2, log.read_text()

        master.kill()
        master.wait()
        deadline = time.monotonic() + PATIENCE
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in workers if _alive(pid)]
        assert not left, f"workers still running after the master died: {left}"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # a restart could listen here again
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
