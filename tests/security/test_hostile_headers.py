"""Malformed headers, sent byte for byte over a real socket: 401 in the envelope, or,
for bytes no HTTP/1.1 parser accepts (NUL, other control characters), the server's
own 400 before the app is reached. The same bytes handed straight to the app (as a
laxer server or proxy might) get the envelope too. Never a 500, never a hang."""

from __future__ import annotations

import base64
import json

import pytest

from tests.security.support import (
    SERVER_REFUSAL,
    asgi_request,
    assert_envelope,
    http_request,
    raw_request,
)

INGEST_BODY = json.dumps({"resourceSpans": []}).encode()
MESSAGES = {
    "Not authorized",
    "Missing auth header",
    "Missing app id",
    "API keys are not accepted on management routes",
}


def _probes(live) -> list[tuple[str, str, bytes, bool]]:
    """(method, target, body, data route?) for routes that check keys in different places."""
    trace = live.app.trace_ids[0]
    return [
        ("GET", "/v1/traces", b"", True),  # checked before routing (KeyGate)
        ("POST", "/v1/traces", INGEST_BODY, True),
        ("GET", f"/v1/traces/{trace}/spans", b"", True),  # checked by the route's dependency
        ("GET", f"/v1/templates?path={live.app.template_path}", b"", True),
        ("GET", "/v1/auth/me", b"", False),  # a session route
        ("GET", "/v1/api-keys", b"", False),
    ]


def _key(live) -> bytes:
    return live.app.key.encode()


def _app(live) -> bytes:
    return live.app.app_id.encode()


# name -> headers(key, app id). Every one of these the server passes on to the app.
CASES = {
    "huge authorization (64 KiB)": lambda k, a: [(b"Authorization", b"Bearer " + b"a" * 65536)],
    "huge authorization (1 MiB)": lambda k, a: [(b"Authorization", b"Bearer " + b"A" * 2**20)],
    "huge app id (1 MiB)": lambda k, a: [
        (b"Authorization", k),
        (b"X-Agentmark-App-Id", b"a" * 2**20),
    ],
    "utf-8 authorization": lambda k, a: [(b"Authorization", "Bearer ключ-🔑".encode())],
    "latin-1 authorization": lambda k, a: [(b"Authorization", b"Bearer \xff\xfe\xe9")],
    "valid key and one more non-ascii byte": lambda k, a: [(b"Authorization", k + b"\xe9")],
    "non-ascii app id": lambda k, a: [(b"Authorization", k), (b"X-Agentmark-App-Id", a + b"\xe9")],
    "bearer with no key": lambda k, a: [(b"Authorization", b"Bearer")],
    "bearer and spaces only": lambda k, a: [(b"Authorization", b"Bearer" + b" " * 40)],
    "bearer and a key with spaces inside": lambda k, a: [
        (b"Authorization", b"Bearer " + k[:20] + b" " + k[20:])
    ],
    "bearer twice": lambda k, a: [(b"Authorization", b"Bearer Bearer " + k)],
    "basic credentials": lambda k, a: [(b"Authorization", b"Basic " + base64.b64encode(k + b":x"))],
    "empty authorization": lambda k, a: [(b"Authorization", b"")],
    "two app id headers": lambda k, a: [
        (b"Authorization", k),
        (b"X-Agentmark-App-Id", a),
        (b"X-Agentmark-App-Id", a),
    ],
    "a thousand app id headers": lambda k, a: (
        [(b"Authorization", k)] + [(b"X-Agentmark-App-Id", a)] * 1000
    ),
    "two authorization headers, the good key first": lambda k, a: [
        (b"Authorization", k),
        (b"Authorization", b"Bearer other"),
    ],
}

# Bytes HTTP/1.1 forbids in a field value: the server refuses them itself.
UNPARSABLE = {
    "nul in authorization": lambda k, a: [(b"Authorization", k[:20] + b"\x00" + k[20:])],
    "nul after bearer": lambda k, a: [(b"Authorization", b"Bearer\x00" + k)],
    "nul in app id": lambda k, a: [(b"Authorization", k), (b"X-Agentmark-App-Id", a + b"\x00")],
    "control characters in authorization": lambda k, a: [(b"Authorization", b"Bearer \x01\x7f")],
    "carriage return inside authorization": lambda k, a: [(b"Authorization", k + b"\rX: y")],
}


def _with_app_id(headers: list[tuple[bytes, bytes]], app_id: bytes) -> list[tuple[bytes, bytes]]:
    if any(name.lower() == b"x-agentmark-app-id" for name, _ in headers):
        return headers
    return [*headers, (b"X-Agentmark-App-Id", app_id)]


def test_the_harness_reaches_the_app_with_a_good_key(live):
    for method, target, body, data in _probes(live):
        if not data:
            continue
        headers = [(b"Authorization", _key(live)), (b"X-Agentmark-App-Id", _app(live))]
        if body:
            headers.append((b"Content-Type", b"application/json"))
        response = raw_request(live.port, http_request(method, target, headers, body))
        assert response.status == 200, response.raw[:300]


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_headers_get_401_in_the_envelope(live, case):
    for method, target, body, data in _probes(live):
        headers = _with_app_id(CASES[case](_key(live), _app(live)), _app(live))
        if not data:
            headers = [(n, v) for n, v in headers if n.lower() != b"x-agentmark-app-id"]
        if body:
            headers.append((b"Content-Type", b"application/json"))
        response = raw_request(live.port, http_request(method, target, headers, body))
        error = assert_envelope(response.status, response.body, expected=401)
        assert error["code"] == "unauthorized"
        assert error["message"] in MESSAGES, error
        if (
            data
            and case not in ("empty authorization", "two app id headers")
            and "thousand" not in case
        ):
            assert error["message"] == "Not authorized", (target, error)


@pytest.mark.parametrize("case", list(UNPARSABLE))
def test_bytes_no_http_parser_accepts_are_refused_by_the_server(live, case):
    for method, target, body, _ in _probes(live):
        headers = _with_app_id(UNPARSABLE[case](_key(live), _app(live)), _app(live))
        response = raw_request(live.port, http_request(method, target, headers, body))
        assert response.status == 400, response.raw[:300]
        assert response.body == SERVER_REFUSAL
        assert response.headers.get("connection") == "close"


@pytest.mark.parametrize("case", list(UNPARSABLE) + list(CASES))
def test_the_app_itself_answers_401_to_the_same_bytes(admin, client, case):
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="full-access")["plaintext_key"].encode()
    builder = UNPARSABLE.get(case) or CASES[case]
    headers = _with_app_id(builder(key, app_id.encode()), app_id.encode())
    for method, path, query in (
        ("GET", "/v1/traces", b""),
        ("GET", "/v1/traces/0af7651916cd43dd8448eb211c80319c/spans", b""),
        ("GET", "/v1/templates", b"path=x.prompt.mdx"),
    ):
        status, body = asgi_request(client, method, path, headers, query=query)
        error = assert_envelope(status, body, expected=401)
        assert error["message"] in MESSAGES
    session = [(b"Authorization", b"Bearer " + admin.token.encode() + b"\x00")]
    status, body = asgi_request(client, "GET", "/v1/auth/me", session)
    assert_envelope(status, body, expected=401)


def test_a_nul_in_the_app_id_of_a_management_call_is_a_4xx_not_a_database_error(admin, client):
    headers = [
        (b"Authorization", f"Bearer {admin.token}".encode()),
        (b"X-Agentmark-App-Id", b"app_\x00x"),
    ]
    status, body = asgi_request(client, "GET", "/v1/api-keys", headers)
    assert_envelope(status, body)
