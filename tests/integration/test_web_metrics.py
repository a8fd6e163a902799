"""The dashboard's metrics page: totals, a chart per figure with the same numbers in
text and tables, the by-model table, the range picker, and only the app's own data."""

from __future__ import annotations

import html
import json
import re
import time

from tests.fixtures.otlp.payloads import llm_trace, post
from tests.integration.test_web_traces import web_session

HOUR_NS = 3_600 * 10**9


def _charts(page: str) -> dict[str, dict]:
    found = re.findall(r'id="chart-([a-z]+)".*?data-chart=\'([^\']*)\'', page, re.S)
    return {name: json.loads(html.unescape(data)) for name, data in found}


def test_the_page_charts_the_app_s_figures_and_splits_them_by_model(admin, client, key_headers):
    app_id, other_app = admin.create_app(), admin.create_app()
    headers = key_headers(admin.create_key(app_id, role="sdk"))
    now = time.time_ns()
    post(client, headers, llm_trace(start_ns=now - 2 * HOUR_NS, duration_ms=100)[1])
    post(client, headers, llm_trace(start_ns=now - HOUR_NS, duration_ms=400, error=True)[1])
    post(client, headers, llm_trace(start_ns=now - 3 * 86_400 * 10**9, model="gpt-4o")[1])
    stranger = key_headers(admin.create_key(other_app, role="sdk"))
    post(client, stranger, llm_trace(start_ns=now - HOUR_NS, model="their-model")[1])
    web_session(client, "reader@example.com", role="read")

    page = client.get(f"/apps/{app_id}/metrics?range=24h")
    assert page.status_code == 200
    text = page.text
    assert 'href="/apps/' + app_id + '/metrics" aria-current="page"' in text
    assert (
        'id="range-24h" href="/apps/' + app_id + '/metrics?range=24h" aria-current="true"' in text
    )
    assert "2 requests in the last 24 hours, 1 of them failed." in text
    assert "50.0% of requests failed in the last 24 hours" in text
    assert "Half the requests in the last 24 hours took 100 ms or less, 95% took 400 ms" in text

    charts = _charts(text)
    assert list(charts) == ["requests", "errors", "cost", "tokens", "latency"]
    requests = charts["requests"]
    assert len(requests["x"]) in (24, 25)  # the hours the range touches
    assert [s["label"] for s in requests["series"]] == ["Requests", "Errors"]
    assert sum(requests["series"][0]["values"]) == 2
    assert sum(requests["series"][1]["values"]) == 1
    assert charts["latency"]["format"] == "ms"
    assert sorted(v for v in charts["latency"]["series"][1]["values"] if v) == [100.0, 400.0]
    # Each chart's table lists the two busy hours.
    assert text.count("2 hours with requests</summary>") == 5

    by_model = re.search(r'<tr data-model="gpt-4o-mini">(.*?)</tr>', text, re.S)
    assert by_model, text
    cells = re.findall(r'<td class="num">([^<]*)</td>', by_model.group(1))
    assert cells[0] == "2" and cells[1] == "50.0%"
    assert 'data-model="gpt-4o"' not in text  # three days ago: outside the range
    assert "their-model" not in text

    week = client.get(f"/apps/{app_id}/metrics?range=7d").text
    assert '<tr data-model="gpt-4o">' in week
    month = _charts(client.get(f"/apps/{app_id}/metrics?range=30d").text)
    assert len(month["requests"]["x"]) == 31  # by day
    # An unknown range (an old link) shows the default, 7 days.
    fallback = client.get(f"/apps/{app_id}/metrics?range=1y").text
    assert f'id="range-7d" href="/apps/{app_id}/metrics?range=7d" aria-current="true"' in fallback


def test_an_app_without_traces_says_so_in_each_chart(admin, client):
    app_id = admin.create_app()
    web_session(client, "owner@example.com")
    text = client.get(f"/apps/{app_id}/metrics").text
    assert text.count("No requests in the last 7 days.") == 5
    assert "No model calls in the last 7 days." in text
    assert "with requests</summary>" not in text


def test_the_page_needs_a_signed_in_member_of_an_existing_app(client, admin):
    response = client.get(f"/apps/{admin.create_app()}/metrics", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    web_session(client, "owner@example.com")
    assert client.get("/apps/app_missing/metrics").status_code == 404
