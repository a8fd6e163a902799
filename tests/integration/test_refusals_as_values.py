"""The key check returns its refusals instead of raising them (issue 12, Deliver 3):
the gate answers a made-up key, a wrong app or a missing header from a value, with no
exception unwinding frames on the way; ``requires()`` raises a fresh copy."""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.errors import NOT_AUTHORIZED, ApiError

TEMPLATE = {"path": "missing.prompt.mdx"}


def test_refusals_come_back_as_values(client, admin):
    authenticator = client.app.state.gateway.authenticator
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")["plaintext_key"]
    scope: dict[str, Any] = {"headers": [], "client": ("127.0.0.1", 1)}
    known = client.portal.call(authenticator.authenticate, [key], [app_id], scope)
    assert not isinstance(known, ApiError)  # now in this process's memory
    made_up = keygen.generate()
    cases = {
        "no header": ([], [app_id]),
        "two headers": ([key, key], [app_id]),
        "no app id": ([key], []),
        "short value": (["sk_agentmark_x"], [app_id]),
        "wrong app": ([key], ["app_other"]),
    }
    for name, (authorizations, app_ids) in cases.items():
        refusal = authenticator.authenticate_known(authorizations, app_ids, scope)
        assert isinstance(refusal, ApiError) and refusal.status_code == 401, name
    # A made-up value: the database says no once, then the memory does.
    looked_up = client.portal.call(authenticator.authenticate, [made_up], [app_id], scope)
    assert looked_up is NOT_AUTHORIZED
    assert authenticator.authenticate_known([made_up], [app_id], scope) is NOT_AUTHORIZED


def test_the_gate_answers_a_made_up_key_without_raising(client, admin):
    app_id = admin.create_app()
    made_up = keygen.generate().encode()
    headers = {"Authorization": made_up.decode(), "X-Agentmark-App-Id": app_id}
    assert client.get("/v1/templates", params=TEMPLATE, headers=headers).status_code == 401
    raised: list[str] = []

    def watch(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception" and issubclass(arg[0], ApiError):
            raised.append(f"{arg[0].__name__} in {frame.f_code.co_name}")
        return watch

    async def request() -> list[dict[str, Any]]:
        """The same request straight into the app, traced, in the app's own thread."""
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/templates",
            "raw_path": b"/v1/templates",
            "root_path": "",
            "query_string": b"path=missing.prompt.mdx",
            "headers": [(b"authorization", made_up), (b"x-agentmark-app-id", app_id.encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80),
            "app": client.app,
        }
        sys.settrace(watch)
        try:
            await client.app(scope, receive, send)
        finally:
            sys.settrace(None)
        return sent

    sent = client.portal.call(request)
    assert sent[0]["status"] == 401
    assert raised == []


def test_a_route_checked_in_the_framework_still_gets_the_refusal(client, admin):
    app_id = admin.create_app()
    headers = {"Authorization": keygen.generate(), "X-Agentmark-App-Id": app_id}
    for _ in range(2):  # the second from the memory of unknown values
        answer = client.get("/v1/traces/abc/spans", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}
