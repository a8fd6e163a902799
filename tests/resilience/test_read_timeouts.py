"""Half-sent requests get 408 and lose their connection instead of holding it forever.

Raw sockets against a real server process (``agentmark-gateway serve``), with
``AGENTMARK_READ_TIMEOUT_SECONDS=1``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.conftest import database_copy
from tests.resilience.gateways import GatewayProcess

pytestmark = pytest.mark.slow

TIMEOUT = 1.0
# Generous for a loaded machine; without the fix the server never answers at all.
PATIENCE = 10.0


@pytest.fixture(scope="module")
def gateway(template_database, tmp_path_factory) -> Iterator[GatewayProcess]:
    """One server for the module: these tests change nothing in its database."""
    root = tmp_path_factory.mktemp("read_timeouts")
    with ExitStack() as stack:
        database_url = stack.enter_context(database_copy(template_database, root, "agw_timeouts"))
        process = GatewayProcess(
            database_url, root / "gw", {"AGENTMARK_READ_TIMEOUT_SECONDS": str(TIMEOUT)}
        )
        stack.callback(process.stop)
        process.wait_ready()
        yield process


def _connect(gateway: GatewayProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=PATIENCE)


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and how long that took."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server held the connection for {PATIENCE} s: {received!r}")
    return received, time.monotonic() - started


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_a_connection_that_sends_nothing_gets_408_and_is_closed(gateway):
    with _connect(gateway) as sock:
        answer, waited = _read_until_closed(sock)
    status, body = _status_and_body(answer)
    assert status == 408
    assert body["error"]["code"] == "request_timeout"
    assert waited >= TIMEOUT * 0.9


def test_half_sent_headers_get_408_and_the_connection_is_closed(gateway):
    with _connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        answer, _ = _read_until_closed(sock)
    assert _status_and_body(answer)[0] == 408


def test_headers_sent_a_byte_at_a_time_still_have_one_deadline(gateway):
    request = b"GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with _connect(gateway) as sock:
        started = time.monotonic()
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # closed on us, as it should be
        answer, _ = _read_until_closed(sock)
        assert time.monotonic() - started < PATIENCE
    assert _status_and_body(answer)[0] == 408


def _login_head(body: bytes, *, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: gateway\r\nConnection: %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (connection, len(body))
    )


def test_a_half_sent_body_gets_408_and_the_connection_is_closed(gateway):
    body = b'{"email": "a@example.com", "password": "not the password"}'
    with _connect(gateway) as sock:
        # Keep-alive asked for: the server closes because the body is incomplete.
        sock.sendall(_login_head(body, keep_alive=True) + body[:10])
        answer, _ = _read_until_closed(sock)
    status, document = _status_and_body(answer)
    assert status == 408
    assert document == {
        "error": {"code": "request_timeout", "message": "The request body was not sent in time"}
    }
    assert b"connection: close" in answer.lower()
    assert httpx.get(f"{gateway.base}/health").status_code == 200
    # A body sent slowly but steadily, each part within the deadline, is read
    # whole although the whole takes longer than the deadline.
    with _connect(gateway) as sock:
        sock.sendall(_login_head(body, keep_alive=False))
        for start in range(0, len(body), 20):
            time.sleep(TIMEOUT * 0.5)
            sock.sendall(body[start : start + 20])
        answer, _ = _read_until_closed(sock)
    assert _status_and_body(answer)[0] == 401
