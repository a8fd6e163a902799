"""The key that sent a trace: recorded at ingest (both routes), the first key kept,
filtered by in GET /v1/traces and the dashboard's list (which names it), and never
a way into another app's traces."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from agentmark_gateway.traces.models import Trace
from tests.fixtures.otlp import legacy_rows
from tests.fixtures.otlp.payloads import llm_trace, post
from tests.integration.test_web_traces import web_session


def _stored_keys(client, app_id: str) -> dict[str, str | None]:
    gateway = client.app.state.gateway

    async def read() -> dict[str, str | None]:
        async with gateway.sessionmaker() as session:
            rows = await session.execute(
                select(Trace.trace_id, Trace.api_key_id).where(Trace.app_id == app_id)
            )
            return {trace_id: key_id for trace_id, key_id in rows}

    return client.portal.call(read)


def _listed(client, headers, **params) -> list[dict]:
    response = client.get("/v1/traces", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_ingest_records_the_key_and_a_trace_keeps_its_first(admin, client, key_headers):
    app_id = admin.create_app()
    first = admin.create_key(app_id, role="sdk", name="first")
    second = admin.create_key(app_id, role="sdk", name="second")
    reader = key_headers(admin.create_key(app_id, role="read-only"))

    shared, spans = llm_trace(name="shared")
    post(client, key_headers(first), spans[:1])
    post(client, key_headers(second), spans[1:])  # a later span of the same trace
    own, spans = llm_trace(name="own")
    post(client, key_headers(second), spans)
    legacy_trace = "ab" * 16
    row = legacy_rows.row(legacy_trace, "12" * 8, start_ns=time.time_ns())
    exported = client.post("/v1/export-traces", json=[row], headers=key_headers(first))
    assert exported.status_code == 200, exported.text

    assert _stored_keys(client, app_id) == {
        shared: first["id"],
        own: second["id"],
        legacy_trace: first["id"],
    }
    summaries = {trace["id"]: trace["api_key_id"] for trace in _listed(client, reader)}
    assert summaries == {shared: first["id"], own: second["id"], legacy_trace: first["id"]}
    assert (
        client.get(f"/v1/traces/{own}", headers=reader).json()["data"]["api_key_id"]
        == (second["id"])
    )


def test_the_key_filter_narrows_the_list_and_another_app_s_key_finds_nothing(
    admin, client, key_headers
):
    app_id, other_app = admin.create_app(), admin.create_app()
    sender = admin.create_key(app_id, role="sdk")
    quiet = admin.create_key(app_id, role="sdk")
    reader = key_headers(admin.create_key(app_id, role="read-only"))
    stranger = admin.create_key(other_app, role="full-access")

    mine, spans = llm_trace()
    post(client, key_headers(sender), spans)
    theirs, spans = llm_trace()
    post(client, key_headers(stranger), spans)

    assert [t["id"] for t in _listed(client, reader, key_id=sender["id"])] == [mine]
    assert _listed(client, reader, key_id=quiet["id"]) == []
    # The other app's key sent traces, but this app's list never shows them.
    assert _listed(client, reader, key_id=stranger["id"]) == []
    assert len(_listed(client, reader)) == 1
    strangers = _listed(client, key_headers(stranger), key_id=stranger["id"])
    assert [t["id"] for t in strangers] == [theirs]


def test_the_dashboard_list_names_the_key_and_filters_by_it(admin, client, key_headers):
    app_id, other_app = admin.create_app(), admin.create_app()
    checkout = admin.create_key(app_id, role="sdk", name="checkout-sdk")
    batch = admin.create_key(app_id, role="sdk", name="batch-jobs")
    stranger = admin.create_key(other_app, role="sdk", name="elsewhere")
    by_checkout, spans = llm_trace(name="answer")
    post(client, key_headers(checkout), spans)
    by_batch, spans = llm_trace(name="nightly")
    post(client, key_headers(batch), spans)
    post(client, key_headers(stranger), llm_trace(name="theirs")[1])
    web_session(client, "owner@example.com")
    base = f"/apps/{app_id}/traces"

    page = client.get(base).text
    link = f'<a href="/apps/{app_id}/settings/api-keys/{checkout["id"]}">checkout-sdk</a>'
    assert link in page
    # The filter offers this app's keys only.
    assert f'<option value="{checkout["id"]}">checkout-sdk</option>' in page
    assert "elsewhere" not in page
    assert _ids(client.get(f"{base}?key={checkout['id']}").text) == [by_checkout]
    assert "No traces match" in client.get(f"{base}?key={stranger['id']}").text
    # A trace's own page names its key too.
    assert link in client.get(f"{base}/{by_checkout}").text

    deleted = client.delete(
        f"/v1/api-keys/{batch['id']}", headers={**admin.headers, "X-Agentmark-App-Id": app_id}
    )
    assert deleted.status_code == 204
    page = client.get(f"{base}?key={batch['id']}").text
    assert _ids(page) == [by_batch]
    assert "batch-jobs" not in page
    assert "deleted key" in page and ">Deleted key</option>" in page
    trace_page = client.get(f"{base}/{by_batch}").text
    assert "deleted key" in trace_page and "batch-jobs" not in trace_page


def _ids(html: str) -> list[str]:
    return re.findall(r'href="/apps/[^/"]+/traces/([0-9a-f]{32})"', html)
