"""Sending what HTTP clients refuse to send, and judging the answers."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

# What uvicorn (httptools) answers for a request its parser refuses: the app never sees it.
SERVER_REFUSAL = b"Invalid HTTP request received."


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool = False
    raw: bytes = field(default=b"", repr=False)

    def json(self) -> Any:
        return json.loads(self.body)


def assert_envelope(status: int, body: bytes | str, *, expected: int | None = None) -> dict:
    """A 4xx whose body is exactly ``{"error": {"code": str, "message": str, ...}}``."""
    assert 400 <= status < 500, f"{status}: {body!r}"
    if expected is not None:
        assert status == expected, f"{status}: {body!r}"
    document = json.loads(body)
    assert list(document) == ["error"], document
    error = document["error"]
    assert isinstance(error.get("code"), str) and error["code"], document
    assert isinstance(error.get("message"), str) and error["message"], document
    return dict(error)


def raw_request(port: int, request: bytes, *, timeout: float = 30.0) -> RawResponse:
    """Sends bytes as they are on a new connection; reads one response (bounded by time)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything
        received = b""
        closed = False
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if separator:
                length = _content_length(head)
                if length is not None and len(body) >= length:
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines and lines[0].startswith(b"HTTP/1.1 "), f"no HTTP answer: {received[:200]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return RawResponse(int(lines[0].split()[1]), headers, body, closed, received)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def http_request(
    method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> bytes:
    """An HTTP/1.1 request, byte for byte as given (no validation, no normalizing)."""
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: gateway.test"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def asgi_request(
    client: TestClient,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    *,
    query: bytes = b"",
    body: bytes = b"",
) -> tuple[int, bytes]:
    """Calls the app directly with raw header bytes that no HTTP/1.1 parser would pass on
    (what another server, or a proxy that does not check, might hand over)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *((n.lower(), v) for n, v in headers)],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await client.app(scope, receive, send)  # type: ignore[arg-type]

    client.portal.call(call)  # type: ignore[union-attr]
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), payload
