"""``serve`` under either HTTP server: the access log switch, the lifespan lines, and
granian's header deadline, on real processes.

Four servers start at once (uvicorn and granian, access log on and off), all at
log level info with a one-second header deadline; the tests read their logs
and talk to them over raw sockets.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.conftest import database_copy
from tests.resilience.gateways import GatewayProcess

pytestmark = pytest.mark.slow

SERVERS = ("uvicorn", "granian")
TIMEOUT = 1.0
# Generous for a loaded machine; without a deadline the server never closes at all.
PATIENCE = 10.0


@pytest.fixture(scope="module")
def servers(
    template_database, tmp_path_factory
) -> Iterator[dict[tuple[str, bool], GatewayProcess]]:
    """(server, access log on) -> a running ``serve``; these tests change no data."""
    root = tmp_path_factory.mktemp("servers")
    with ExitStack() as stack:
        database_url = stack.enter_context(database_copy(template_database, root, "agw_servers"))
        started = {}
        for server in SERVERS:
            for access_log in (True, False):
                env = {
                    "AGENTMARK_SERVER": server,
                    "AGENTMARK_LOG_LEVEL": "info",
                    "AGENTMARK_READ_TIMEOUT_SECONDS": str(TIMEOUT),
                }
                if not access_log:
                    env["AGENTMARK_ACCESS_LOG"] = "false"
                process = GatewayProcess(database_url, root / f"{server}-{access_log}", env)
                stack.callback(process.stop)
                started[(server, access_log)] = process
        for process in started.values():
            process.wait_ready()
        yield started


PROBE = "/no-such-page-for-the-access-log"


def _access_lines(process: GatewayProcess) -> list[str]:
    return [line for line in process.log().splitlines() if f'"GET {PROBE} ' in line]


@pytest.mark.parametrize("server", SERVERS)
def test_the_access_log_is_on_by_default_and_false_turns_it_off(servers, server):
    on, off = servers[(server, True)], servers[(server, False)]
    for process in (on, off):
        assert httpx.get(f"{process.base}{PROBE}").status_code == 404
    deadline = time.monotonic() + PATIENCE  # the line may reach the file a moment later
    while not _access_lines(on) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_access_lines(on)) == 1, on.log()
    assert " 404" in _access_lines(on)[0]
    assert _access_lines(off) == [], off.log()


@pytest.mark.parametrize("server", SERVERS)
def test_both_servers_log_the_end_of_the_lifespan_startup(servers, server):
    assert "Application startup complete." in servers[(server, True)].log()


def _closed_after(process: GatewayProcess, sent: bytes) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", process.port), timeout=PATIENCE) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"the server held the connection for {PATIENCE} s: {received!r}")
        except ConnectionResetError:
            pass
    return received, time.monotonic() - started


@pytest.mark.parametrize(
    "sent", [b"", b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: "], ids=["nothing", "half"]
)
def test_under_granian_headers_past_the_deadline_lose_their_connection(servers, sent):
    # hyper closes without an answer where uvicorn's protocol sends 408 first
    # (test_read_timeouts.py): either way the socket is freed at the deadline.
    received, waited = _closed_after(servers[("granian", False)], sent)
    assert received == b""
    assert TIMEOUT * 0.9 <= waited < PATIENCE


def test_granian_names_itself_in_a_server_header_and_uvicorn_sends_none(servers):
    # granian adds "server: granian" to every answer and has no switch for it;
    # docs/deploy.md says so. uvicorn runs with its header off.
    assert httpx.get(f"{servers[('granian', False)].base}/health").headers["server"] == "granian"
    assert "server" not in httpx.get(f"{servers[('uvicorn', False)].base}/health").headers
