"""Usage per key: counted in memory per request, written in batches, exact when read
back across processes; least-privilege advice from what a key really used."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from agentmark_gateway.app import create_app
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.usage.models import HOUR, MINUTE, KeyUsage
from agentmark_gateway.usage.rollup import roll_up

TEMPLATE = {"path": "missing.prompt.mdx"}


def _usage(admin, key, **params):
    response = admin.client.get(
        f"/v1/api-keys/{key['id']}/usage",
        params=params,
        headers={**admin.headers, "X-Agentmark-App-Id": key["app_id"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _send_mix(client: TestClient, key, key_headers) -> None:
    """Two template reads (404: 4xx, admitted), one 403, one 401 for the known key."""
    headers = key_headers(key)
    for _ in range(2):
        assert client.get("/v1/templates", params=TEMPLATE, headers=headers).status_code == 404
    assert client.get("/v1/traces", headers=headers).status_code == 403
    wrong_app = {**headers, "X-Agentmark-App-Id": "app_other"}
    assert client.get("/v1/templates", params=TEMPLATE, headers=wrong_app).status_code == 401


def test_each_outcome_and_permission_is_counted_and_read_back(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk")
    _send_mix(admin.client, key, key_headers)
    # A route checked inside the framework (a path parameter) counts the same way.
    traces = admin.client.get("/v1/traces/abc/spans", headers=key_headers(key))
    assert traces.status_code == 403
    data = _usage(admin, key)
    assert data["totals"]["outcomes"] == {
        "2xx": 0,
        "4xx": 2,
        "401": 1,
        "403": 2,
        "429": 0,
        "5xx": 0,
    }
    assert data["totals"]["requests"] == 5
    assert data["totals"]["permissions"] == {"template.read": 2}
    assert data["totals"]["refused"] == {"span.read": 1, "trace.read": 1}
    assert data["last_user_agent"] == "testclient" and data["last_seen_at"]
    assert data["bucket"] == "hour" and len(data["series"]) in (24, 25)
    assert sum(point["requests"] for point in data["series"]) == 5


def test_a_rate_limited_request_is_a_429_of_its_key(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk", rate_limit_per_minute=1)
    answers = [
        admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key)).status_code
        for _ in range(3)
    ]
    assert answers == [404, 429, 429]
    outcomes = _usage(admin, key, bucket="minute")["totals"]["outcomes"]
    assert (outcomes["4xx"], outcomes["429"]) == (1, 2)


def test_counts_are_exact_across_two_processes(admin, settings, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk")
    with TestClient(create_app(settings), client=("203.0.113.9", 4000)) as other:
        _send_mix(admin.client, key, key_headers)
        other.headers["User-Agent"] = "agentmark-sdk-python/1.2"
        _send_mix(other, key, key_headers)
        other.portal.call(other.app.state.gateway.usage.flush)
    data = _usage(admin, key)
    assert data["last_client_address"] == "203.0.113.9"
    assert data["last_user_agent"] == "agentmark-sdk-python/1.2"
    totals = data["totals"]
    assert totals["outcomes"]["4xx"] == 4 and totals["outcomes"]["403"] == 2
    assert totals["outcomes"]["401"] == 2 and totals["requests"] == 8


def test_another_apps_key_is_not_found(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk")
    other_app = admin.create_app()
    response = admin.client.get(
        f"/v1/api-keys/{key['id']}/usage",
        headers={**admin.headers, "X-Agentmark-App-Id": other_app},
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "api_key_not_found"


def test_the_app_usage_adds_up_its_keys(admin, key_headers):
    app_id = admin.create_app()
    first = admin.create_key(app_id, role="sdk")
    second = admin.create_key(app_id, role="sdk")
    _send_mix(admin.client, first, key_headers)
    admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(second))
    response = admin.client.get(
        "/v1/usage", headers={**admin.headers, "X-Agentmark-App-Id": app_id}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["totals"]["requests"] == 5
    assert [(k["key_id"], k["requests"]) for k in data["keys"]] == [
        (first["id"], 4),
        (second["id"], 1),
    ]


def test_bad_windows_are_400(admin):
    key = admin.create_key(admin.create_app(), role="sdk")
    for params in (
        {"bucket": "minute", "from": "2026-01-01", "to": "2026-03-01"},
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "yesterday"},
        {"bucket": "week"},
        {"to": "9999-12-31"},
    ):
        response = admin.client.get(
            f"/v1/api-keys/{key['id']}/usage",
            params=params,
            headers={**admin.headers, "X-Agentmark-App-Id": key["app_id"]},
        )
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] == "invalid_query_params"


def test_a_full_access_key_used_only_for_templates_is_advised_to_shrink(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="full-access")
    for _ in range(3):
        admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key))
    url = f"/v1/api-keys/{key['id']}/advice"
    headers = {**admin.headers, "X-Agentmark-App-Id": key["app_id"]}
    data = admin.client.get(url, headers=headers).json()["data"]
    assert data["windows"]["30d"]["used"] == ["template.read"]
    assert "template.read" not in data["windows"]["7d"]["unused"]
    advice = data["advice"]
    assert advice["role"] == "custom" and advice["permissions"] == ["template.read"]
    assert advice["narrower"] and advice["refused_7d"] == 0
    assert "used 1 in 30 days" in advice["summary"]
    # A set of the admin's own choosing: the preview counts what it would have refused.
    preview = admin.client.get(url, params={"permissions": "trace.ingest"}, headers=headers).json()[
        "data"
    ]["preview"]
    assert preview == {"permissions": ["trace.ingest"], "requests_7d": 3, "refused_7d": 3}
    sdk = admin.client.get(url, params={"role": "sdk"}, headers=headers).json()["data"]
    assert sdk["preview"]["refused_7d"] == 0
    bad = admin.client.get(url, params={"role": "nobody"}, headers=headers)
    assert bad.status_code == 400


def test_an_unused_key_is_advised_to_go(admin):
    key = admin.create_key(admin.create_app(), role="sdk")
    data = admin.client.get(
        f"/v1/api-keys/{key['id']}/advice",
        headers={**admin.headers, "X-Agentmark-App-Id": key["app_id"]},
    ).json()["data"]
    assert data["advice"]["role"] is None
    assert "used none in 30 days" in data["advice"]["summary"]


def test_old_minutes_fold_into_hours_and_old_hours_are_pruned(client):
    gateway = client.app.state.gateway
    now = utcnow().replace(second=0, microsecond=0)
    three_days = (now - timedelta(days=3)).replace(minute=0)

    def row(granularity: str, start, ok: int) -> KeyUsage:
        return KeyUsage(
            app_id="app_a",
            key_id="key_a",
            granularity=granularity,
            bucket_start=start,
            ok=ok,
            client_error=0,
            unauthorized=0,
            forbidden=0,
            rate_limited=0,
            server_error=0,
            spans=0,
            scores=0,
            permission_sets={"trace.ingest": ok},
            refused={},
        )

    async def scenario() -> list[tuple[str, int, dict]]:
        async with gateway.sessionmaker() as session:
            session.add_all(
                [
                    row(MINUTE, three_days + timedelta(minutes=1), 2),
                    row(MINUTE, three_days + timedelta(minutes=2), 3),
                    row(MINUTE, now - timedelta(minutes=5), 7),
                    row(HOUR, now - timedelta(days=91), 11),
                ]
            )
            await session.commit()
        await roll_up(gateway.sessionmaker, now=now)
        async with gateway.sessionmaker() as session:
            rows = (await session.scalars(select(KeyUsage))).all()
        return sorted((r.granularity, r.ok, r.permission_sets) for r in rows)

    assert client.portal.call(scenario) == [
        (HOUR, 5, {"trace.ingest": 5}),
        (MINUTE, 7, {"trace.ingest": 7}),
    ]


def test_nothing_is_counted_when_counting_is_off(settings, key_headers):
    from tests.conftest import Admin, add_user

    off = settings.model_copy(update={"usage_counting": False})
    with TestClient(create_app(off)) as client:
        admin = Admin(client, add_user(client, "off@example.com", "owner"))
        key = admin.create_key(admin.create_app(), role="sdk")
        client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key))
        assert _usage(admin, key)["totals"]["requests"] == 0


def test_the_cli_shows_usage_and_advice(admin, key_headers, monkeypatch, database_url, tmp_path):
    from typer.testing import CliRunner

    from agentmark_gateway.cli.main import app as cli_app

    monkeypatch.setenv("AGENTMARK_DATABASE_URL", database_url)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path / "cli-data"))
    app_id = admin.create_app()
    key = admin.create_key(app_id, role="full-access", name="ci-key")
    for _ in range(2):
        admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key))
    admin.client.portal.call(admin.client.app.state.gateway.usage.flush)
    runner = CliRunner()
    shown = runner.invoke(cli_app, ["keys", "usage", "--app", app_id, "ci-key"])
    assert shown.exit_code == 0, shown.output
    assert "ci-key: 2 requests" in shown.output and "4xx: 2" in shown.output
    assert "template.read (2)" in shown.output
    advised = runner.invoke(cli_app, ["keys", "advice", "--app", app_id, "ci-key"])
    assert advised.exit_code == 0, advised.output
    assert "shrink it to template.read" in advised.output
    assert "keys edit --app" in advised.output and "--permission template.read" in advised.output
    bad = runner.invoke(cli_app, ["keys", "usage", "--app", app_id, "ci-key", "--bucket", "week"])
    assert bad.exit_code != 0


def test_spans_and_scores_stored_are_counted_for_the_key(admin, key_headers):
    from tests.fixtures.otlp import payloads

    key = admin.create_key(admin.create_app(), role="sdk")
    trace = payloads.trace_id()
    spans = [payloads.span(trace), payloads.span(trace), payloads.span(trace)]
    payloads.post(admin.client, key_headers(key), spans)
    score = {"resource_id": trace, "name": "accuracy", "score": 1.0}
    assert admin.client.post("/v1/scores", json=score, headers=key_headers(key)).status_code == 201
    batch = {"scores": [score, score]}
    assert (
        admin.client.post("/v1/scores/batch", json=batch, headers=key_headers(key)).status_code
        == 201
    )
    totals = _usage(admin, key)["totals"]
    assert (totals["spans"], totals["scores"]) == (3, 3)
    assert totals["permissions"] == {"trace.ingest": 1, "score.write": 2}


def test_an_apps_retention_window_prunes_its_usage_counts_too(client):
    from agentmark_gateway import retention
    from agentmark_gateway.apps.models import App

    gateway = client.app.state.gateway
    now = utcnow().replace(second=0, microsecond=0)

    def row(app_id: str, start) -> KeyUsage:
        return KeyUsage(
            app_id=app_id,
            key_id=f"key_{app_id}",
            granularity=HOUR,
            bucket_start=start,
            **dict.fromkeys(("ok", "client_error", "unauthorized", "forbidden", "rate_limited"), 0),
            server_error=0,
            spans=0,
            scores=0,
            permission_sets={},
            refused={},
        )

    async def scenario() -> list[tuple[str, object]]:
        async with gateway.sessionmaker() as session:
            session.add_all(
                [
                    App(id="app_short", name="short", retention_days=7),
                    App(id="app_forever", name="forever", retention_days=0),
                ]
            )
            session.add_all(
                [
                    row("app_short", now - timedelta(days=8)),
                    row("app_short", now - timedelta(days=1)),
                    row("app_forever", now - timedelta(days=8)),
                ]
            )
            await session.commit()
        pruned = await retention.prune(gateway.sessionmaker, 0, pause=0)
        assert pruned.usage == 1
        async with gateway.sessionmaker() as session:
            rows = (await session.scalars(select(KeyUsage))).all()
        return sorted((r.app_id, r.bucket_start) for r in rows)

    assert client.portal.call(scenario) == [
        ("app_forever", now - timedelta(days=8)),
        ("app_short", now - timedelta(days=1)),
    ]


def test_last_used_is_live_in_the_list_and_the_delete_dialog(admin, key_headers):
    from tests.integration.test_web_flows import web_sign_in

    app_id = admin.create_app()
    key = admin.create_key(app_id, role="sdk")
    headers = {**admin.headers, "X-Agentmark-App-Id": app_id}
    listed = admin.client.get("/v1/api-keys", headers=headers).json()["data"]
    assert listed[0]["last_used_at"] is None
    admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key))
    # Seconds later, long before the once-a-minute write: the list knows already.
    listed = admin.client.get("/v1/api-keys", headers=headers).json()["data"]
    assert listed[0]["last_used_at"] is not None
    shown = admin.client.get(f"/v1/api-keys/{key['id']}", headers=headers).json()["data"]
    assert shown["last_used_at"] is not None
    other = admin.create_key(app_id, role="sdk")
    admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(other))
    web_sign_in(admin.client, "owner@example.com")
    dialog = admin.client.get(f"/apps/{app_id}/settings/api-keys/{other['id']}/delete")
    assert dialog.status_code == 200
    assert 'class="callout warn recent-use"' in dialog.text
