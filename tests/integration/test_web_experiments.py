"""The experiment pages of the dashboard on runs recorded as the clients record them:
rows joined and marked by the regression gate's rule, long runs paged, and a
member of the read role seeing every page with nothing to change."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.web import experiment_pages
from tests.fixtures.otlp.experiment_runs import Row, post_run, sdk_run
from tests.integration.test_web_traces import web_session

BASE = [
    Row(input={"q": 1}, expected="1", output="1", scores={"exact": 1}),
    Row(input={"q": 2}, expected="2", output="2", scores={"exact": 0.5}),
    Row(input={"q": 3}, expected="3", output="x", scores={"exact": 0}),
]
# The same inputs in another order, one new: rows meet by input, not by position.
NEWER = [
    Row(input={"q": 2}, expected="2", output="two", scores={"exact": 0.4}),  # fell by 20%
    Row(input={"q": 1}, expected="1", output="1", scores={"exact": 1}),
    Row(input={"q": 3}, expected="3", output="y", scores={"exact": 0}),  # a base of 0 never
    Row(input={"q": 4}, expected="4", output="4", scores={"exact": 0}),  # no base row
]


@pytest.fixture
def runs(admin: Any, client: TestClient, key_headers: Any) -> tuple[str, str, str]:
    app_id = admin.create_app("lab")
    headers = key_headers(admin.create_key(app_id, role="full-access"))
    base = post_run(client, headers, sdk_run(BASE))
    newer = post_run(client, headers, sdk_run(NEWER))
    web_session(client, "owner@example.com")
    return app_id, base.run_id, newer.run_id


def compare(client: TestClient, app_id: str, base: str, run: str, **params: Any) -> str:
    page = client.get(
        f"/apps/{app_id}/experiments/compare", params={"base": base, "run": run, **params}
    )
    assert page.status_code == 200, page.text
    return page.text


def regressed_rows(html: str) -> list[str]:
    """The item names of the rows marked regressed."""
    rows = re.findall(r'<tr class="regressed">\s*<th scope="row"><a [^>]*>([^<]*)</a>', html)
    assert len(rows) == html.count(" Regressed</span>"), "a marked row says so in words too"
    return rows


def row_of(html: str, name: str) -> str:
    """The table row whose first cell links ``name``."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    return next(row for row in rows if re.search(rf"<a [^>]*>{name}</a>", row))


def test_a_row_regressed_when_its_score_fell_by_more_than_the_tolerance(client, runs):
    app_id, base, newer = runs
    # Item names are the row indexes of the newer run: its row 0 is the input q=2.
    assert regressed_rows(compare(client, app_id, base, newer)) == ["0"]
    assert regressed_rows(compare(client, app_id, base, newer, tolerance=0.19)) == ["0"]
    at_twenty = compare(client, app_id, base, newer, tolerance=0.2)  # not more than 20%
    assert regressed_rows(at_twenty) == []
    assert "0 of 4 rows regressed" in at_twenty
    assert "3 rows have a base row of the same input" in at_twenty
    assert "No base row" in at_twenty
    # The base row of the same input, not of the same place, is beside each row.
    first = row_of(at_twenty, "0")
    assert '<code class="value">two</code>' in first and '<code class="value">2</code>' in first


def test_the_other_way_round_nothing_fell(client, runs):
    app_id, base, newer = runs
    html = compare(client, app_id, newer, base)
    assert regressed_rows(html) == []
    assert "0 of 3 rows regressed" in html


def test_the_list_groups_the_runs_of_an_experiment_newest_first(client, runs):
    app_id, base, newer = runs
    page = client.get(f"/apps/{app_id}/experiments")
    assert page.status_code == 200
    assert page.text.count('<section class="panel experiment"') == 1
    assert page.text.index(f"Run {newer[:8]}") < page.text.index(f"Run {base[:8]}")
    assert f"base={base}&amp;run={newer}" in page.text  # compare with the run before


def test_a_long_run_is_paged_and_says_so(client, runs, monkeypatch):
    app_id, _base, newer = runs
    monkeypatch.setattr(experiment_pages, "ROWS_PER_PAGE", 3)
    first = client.get(f"/apps/{app_id}/experiments/runs/{newer}")
    assert "Rows 1\u20133 of 4" in first.text
    assert first.text.count('<td class="value-cell">') == 3 * 3
    assert 'href="?page=2"' in first.text
    second = client.get(f"/apps/{app_id}/experiments/runs/{newer}?page=2")
    assert "Rows 4\u20134 of 4" in second.text
    assert "&#34;q&#34;:4" in second.text and "&#34;q&#34;:2" not in second.text


def test_a_comparison_of_long_runs_says_it_compared_the_first_rows(client, runs, monkeypatch):
    app_id, base, newer = runs
    monkeypatch.setattr(experiment_pages, "MAX_COMPARED", 2)
    html = compare(client, app_id, base, newer)
    assert "Compared the first 2 rows of each run." in html
    assert "of 2 rows regressed" in html


def test_a_row_s_trace_links_to_its_run(client, runs):
    app_id, _base, newer = runs
    run_page = client.get(f"/apps/{app_id}/experiments/runs/{newer}").text
    trace_id = re.search(rf'href="/apps/{app_id}/traces/([0-9a-f]{{32}})"', run_page)
    assert trace_id
    trace_page = client.get(f"/apps/{app_id}/traces/{trace_id.group(1)}").text
    assert f'href="/apps/{app_id}/experiments/runs/{newer}"' in trace_page


def test_a_read_member_sees_every_experiment_page_and_nothing_to_change(client, runs):
    app_id, base, newer = runs
    web_session(client, "reader@example.com", role="read")
    pages = [
        f"/apps/{app_id}/experiments",
        f"/apps/{app_id}/experiments/runs/{newer}",
        f"/apps/{app_id}/experiments/compare?base={base}&run={newer}",
    ]
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert "math-eval" in page.text
        forms = re.findall(r'<form [^>]*method="(\w+)"[^>]*action="([^"]*)"', page.text)
        assert all(method == "get" or action == "/logout" for method, action in forms), forms
