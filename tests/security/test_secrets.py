"""Secrets stay secret. After a realistic run (keys created through the API and the
dashboard, used, rolled, edited, deleted; users signed in and out; an invitation;
every log at DEBUG captured to a file), no raw key value and no session or link
token is in the database (SQLite file and WAL, or every PostgreSQL row), in the
logs, or in any HTTP answer but the one that handed it out. And every kind of
bad key gets the same 401, byte for byte."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from agentmark_gateway.api_keys import keygen
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.app import create_app
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.db.models import Base
from agentmark_gateway.settings import Settings
from tests.conftest import BACKEND, add_user
from tests.fixtures.otlp import payloads
from tests.integration.test_web_security import PASSWORD, csrf

KEY_VALUE = re.compile(r"sk_agentmark_[0-9A-Za-z]{38}")


@dataclass
class Recorder:
    """Every answer of the run, and which secrets each one was allowed to hand out."""

    client: TestClient
    answers: list[tuple[str, bytes, set[str]]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # value -> what it is

    def __call__(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.client.request(method, url, **kwargs)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.answers.append((f"{method} {url}", headers.encode() + b"\n" + response.content, set()))
        return response

    def expect(self, status: int, method: str, url: str, **kwargs: Any) -> Any:
        response = self(method, url, **kwargs)
        assert response.status_code == status, f"{method} {url}: {response.text[:300]}"
        return response

    def issued(self, value: str, what: str) -> str:
        """``value`` is a new secret; the last answer is the one allowed to show it."""
        assert value and value not in self.secrets
        self.secrets[value] = what
        self.answers[-1][2].add(value)
        return value


def _forms(value: str) -> list[str]:
    """A secret, and the part of it that is random (found even if stored without prefix)."""
    body = value.removeprefix(keygen.PREFIX).removeprefix("ses_")
    return [value, body]


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every logger at DEBUG into one file, as an operator chasing a problem would run it."""
    path = tmp_path / "gateway-debug.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    noisy = {name: logging.getLogger(name).level for name in ("sqlalchemy.engine", "httpx")}
    for name in noisy:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
        handler.close()


def _key(record: Recorder, headers: dict[str, str], what: str, **body: Any) -> dict[str, Any]:
    response = record("POST", "/v1/api-keys", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    record.issued(data["plaintext_key"], what)
    return data


def _data(key: str, app_id: str, *, bearer: bool = False) -> dict[str, Any]:
    value = f"Bearer {key}" if bearer else key
    # Non-ASCII goes on the wire as UTF-8 bytes, as a careless client would send it.
    return {
        "Authorization": value if value.isascii() else value.encode(),
        "X-Agentmark-App-Id": app_id,
    }


def _run_the_scenario(record: Recorder, client: TestClient) -> None:
    expect = record.expect
    add_user(client, "owner@example.com", "owner")
    owner = {"email": "owner@example.com", "password": PASSWORD}
    login = expect(200, "POST", "/v1/auth/login", json=owner)
    session = record.issued(login.json()["data"]["token"], "API session")
    admin = {"Authorization": f"Bearer {session}"}
    app_id = expect(201, "POST", "/v1/apps", json={"name": "shop"}, headers=admin).json()
    app_id = app_id["data"]["id"]
    other = expect(201, "POST", "/v1/apps", json={"name": "other"}, headers=admin).json()
    other_app = other["data"]["id"]
    manage = {**admin, "X-Agentmark-App-Id": app_id}

    full = _key(record, manage, "full-access key", name="ci", role="full-access")
    reader = _key(record, manage, "read-only key", name="bi", role="read-only")
    worker = _key(record, manage, "scoring key", name="judge", permissions=["trace.read"])
    in_two_days = (utcnow() + timedelta(days=2)).isoformat()
    soon = _key(record, manage, "expiring key", name="temp", role="sdk", expires_at=in_two_days)
    full_key, reader_key = full["plaintext_key"], reader["plaintext_key"]
    worker_key, soon_key = worker["plaintext_key"], soon["plaintext_key"]

    # Used as each client would: the SDK's raw header, a BI tool's Bearer.
    trace, spans = payloads.llm_trace(user_id="u-1", session_id="s-1")
    body = payloads.request(spans)
    expect(200, "POST", "/v1/traces", json=body, headers=_data(full_key, app_id))
    for path in ("/v1/traces", f"/v1/traces/{trace}", "/v1/spans", "/v1/sessions", "/v1/metrics"):
        expect(200, "GET", path, headers=_data(reader_key, app_id, bearer=True))
    template = {"params": {"path": "x.prompt.mdx"}, "headers": _data(soon_key, app_id)}
    expect(404, "GET", "/v1/templates", **template)
    # Refusals of every kind, each for a request that carried the key.
    expect(403, "POST", "/v1/scores", json={}, headers=_data(worker_key, app_id))
    expect(401, "GET", "/v1/traces", headers=_data(full_key, other_app))
    expect(401, "GET", "/v1/api-keys", headers={"Authorization": f"Bearer {full_key}"})
    broken = {**_data(full_key, app_id), "Content-Type": "application/json"}
    expect(400, "POST", "/v1/traces", content=b"{not json", headers=broken)

    # Roll with and without grace, edit, delete.
    grace = {"grace_seconds": 3600}
    rolled = expect(201, "POST", f"/v1/api-keys/{full['id']}/roll", json=grace, headers=manage)
    new_full = record.issued(rolled.json()["data"]["plaintext_key"], "rolled full-access key")
    for key in (full_key, new_full):
        expect(200, "GET", "/v1/traces", headers=_data(key, app_id))
    now = {"grace_seconds": 0}
    rolled = expect(201, "POST", f"/v1/api-keys/{reader['id']}/roll", json=now, headers=manage)
    record.issued(rolled.json()["data"]["plaintext_key"], "rolled read-only key")
    expect(401, "GET", "/v1/traces", headers=_data(reader_key, app_id))
    edit = {"name": "judge-2", "permissions": ["trace.read", "score.write"]}
    expect(200, "PATCH", f"/v1/api-keys/{worker['id']}", json=edit, headers=manage)
    expect(
        201,
        "POST",
        "/v1/scores",
        json={"resourceId": trace, "name": "helpful", "score": 1},
        headers=_data(worker_key, app_id),
    )
    expect(204, "DELETE", f"/v1/api-keys/{soon['id']}", headers=manage)
    expect(401, "GET", "/v1/templates", **template)
    for path in ("/v1/api-keys", f"/v1/api-keys/{full['id']}", "/v1/audit-log", "/v1/auth/me"):
        expect(200, "GET", path, headers=manage)
    invite = {"email": "new@example.com", "role": "read"}
    invited = expect(201, "POST", "/v1/members", json=invite, headers=admin)
    link = invited.json()["data"]["invite_url"].rsplit("/", 1)[1]
    record.issued(link, "invitation link token")

    # The dashboard: sign in, look around, make and roll a key, sign out.
    form = expect(200, "GET", "/login")
    signed_in = {**owner, "csrf_token": csrf(form.text)}
    expect(303, "POST", "/login", data=signed_in, follow_redirects=False)
    record.issued(client.cookies["agentmark_session"], "dashboard session")
    token = csrf(expect(200, "GET", "/", follow_redirects=True).text)
    keys = f"/apps/{app_id}/settings/api-keys"
    new_key = {"name": "deploy", "role": "sdk", "csrf_token": token}
    dialog = expect(200, "POST", keys, data=new_key)
    record.issued(_value_in(dialog.text), "dashboard key")
    rows = expect(200, "GET", f"{keys}/rows").text
    roll_link = re.search(r"/api-keys/(key_[A-Za-z0-9_-]+)/roll", rows)
    assert roll_link, "the key list offers no roll"
    key_id = roll_link.group(1)
    roll = {"grace_seconds": "0", "csrf_token": token}
    dialog = expect(200, "POST", f"{keys}/{key_id}/roll", data=roll)
    record.issued(_value_in(dialog.text), "dashboard-rolled key")
    for page in (keys, f"{keys}/new", "/settings/members"):
        expect(200, "GET", page)
    expect(200, "GET", f"/apps/{app_id}/settings/audit-log")
    expect(303, "POST", "/logout", data={"csrf_token": token}, follow_redirects=False)
    expect(204, "POST", "/v1/auth/logout", headers=admin)
    expect(401, "GET", "/v1/auth/me", headers=admin)

    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    client.portal.call(gateway.last_used.flush)  # type: ignore[union-attr]


def _value_in(page: str) -> str:
    found = KEY_VALUE.search(page)
    assert found, "the one-time dialog shows no key value"
    return found.group(0)


def _database_text(client: TestClient, database_url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row."""
    if BACKEND != "postgresql":
        path = Path(make_url(database_url).database or "")
        files = [path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]
        found = [f.read_bytes() for f in files if f.exists()]
        assert found and Path(f"{path}-wal").exists(), "expected the WAL beside the database"
        return b"".join(found)
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def dump() -> bytes:
        rows = []
        async with gateway.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                result = await connection.execute(text(f'SELECT * FROM "{table.name}"'))
                rows.extend(repr(tuple(row)) for row in result)
        return "\n".join(rows).encode()

    return client.portal.call(dump)  # type: ignore[union-attr,no-any-return]


def test_no_secret_is_stored_logged_or_echoed(settings: Settings, database_url, debug_log):
    with TestClient(create_app(settings)) as client:
        record = Recorder(client)
        _run_the_scenario(record, client)
        stored = _database_text(client, database_url)
    assert len(record.secrets) >= 11, record.secrets
    logged = debug_log.read_bytes()
    assert b"SELECT" in logged, "the DEBUG log did not capture the database statements"
    for value, what in record.secrets.items():
        for form in _forms(value):
            assert form.encode() not in stored, f"the {what} is in the database"
            assert form.encode() not in logged, f"the {what} is in the DEBUG log"
            for request, answer, allowed in record.answers:
                if value not in allowed:
                    assert form.encode() not in answer, f"the {what} is in the answer to {request}"
    issuers = [request for request, _, allowed in record.answers if allowed]
    assert len(issuers) == len(record.secrets), issuers


# --- one 401 for every bad key ---------------------------------------------------------


def _expire(client: TestClient, key_id: str) -> None:
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def run() -> None:
        async with gateway.sessionmaker() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        gateway.keys.invalidate(key_id=key_id)

    client.portal.call(run)  # type: ignore[union-attr]


def test_every_kind_of_bad_key_gets_the_same_401_byte_for_byte(admin, client):
    app_id = admin.create_app("mine")
    other_app = admin.create_app("theirs")
    manage = {**admin.headers, "X-Agentmark-App-Id": app_id}
    good = admin.create_key(app_id, role="full-access")["plaintext_key"]
    deleted = admin.create_key(app_id, role="full-access")
    client.delete(f"/v1/api-keys/{deleted['id']}", headers=manage)
    expired = admin.create_key(app_id, role="full-access")
    _expire(client, expired["id"])
    rolled = admin.create_key(app_id, role="full-access")
    client.post(f"/v1/api-keys/{rolled['id']}/roll", json={"grace_seconds": 0}, headers=manage)
    elsewhere = admin.create_key(app_id, role="full-access", allowed_cidrs=["203.0.113.0/24"])
    gone_app = admin.create_app("gone")
    of_gone_app = admin.create_key(gone_app, role="full-access")["plaintext_key"]
    client.delete(f"/v1/apps/{gone_app}", headers=admin.headers)
    wrong_checksum = good[:-1] + ("A" if good[-1] != "A" else "B")

    bad = {
        "unknown": (keygen.generate(), app_id),
        "deleted": (deleted["plaintext_key"], app_id),
        "expired": (expired["plaintext_key"], app_id),
        "rolled away": (rolled["plaintext_key"], app_id),
        "wrong app": (good, other_app),
        "app that does not exist": (good, "app_doesnotexist"),
        "deleted app": (of_gone_app, gone_app),
        "outside its IP allowlist": (elsewhere["plaintext_key"], app_id),
        "wrong checksum": (wrong_checksum, app_id),
        "too short": (good[:-5], app_id),
        "too long": (good + "0", app_id),
        "no prefix": (good.removeprefix(keygen.PREFIX), app_id),
        "another vendor's token": ("ghp_" + "a" * 36, app_id),
        "bearer alone": ("Bearer", app_id),
        "non-ascii": (good[:-1] + "é", app_id),
        "a session token": ("Bearer " + admin.token, app_id),
    }
    routes = [
        ("GET", "/v1/traces", {}),
        ("GET", "/v1/traces/0af7651916cd43dd8448eb211c80319c", {}),
        ("POST", "/v1/scores", {"json": {"resource_id": "r", "name": "n", "score": 1}}),
        ("GET", "/v1/templates", {"params": {"path": "x.prompt.mdx"}}),
    ]
    for method, path, extra in routes:
        reference = client.request(method, path, headers=_data(good, app_id), **extra)
        assert reference.status_code in (200, 201, 404), reference.text
        answers = {}
        for what, (key, app) in bad.items():
            response = client.request(method, path, headers=_data(key, app), **extra)
            assert response.status_code == 401, f"{what} on {path}: {response.text}"
            answers[what] = (
                response.content,
                # Every answer has its own date and request id; nothing else may differ.
                sorted(
                    (k, v) for k, v in response.headers.items() if k not in ("date", "x-request-id")
                ),
            )
        first = next(iter(answers.values()))
        assert first[0] == b'{"error":{"code":"unauthorized","message":"Not authorized"}}'
        for what, answer in answers.items():
            assert answer == first, f"{what} on {method} {path} is told apart: {answer} vs {first}"


def test_the_generated_pepper_is_kept_readable_by_its_owner_only(tmp_path):
    """Without the pepper, a stolen database is a list of HMACs no one can test a guess against."""
    pepper = Settings(data_dir=tmp_path / "data").pepper_bytes()
    path = tmp_path / "data" / "key-pepper"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(pepper) >= 32
    key = keygen.generate()
    assert keygen.digest(key, pepper) != keygen.digest(key, b"a guessed pepper")
    assert Settings(data_dir=tmp_path / "data").pepper_bytes() == pepper
