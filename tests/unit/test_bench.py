"""The benchmark's pieces: its apps, its wrk scripts, its load, its table and targets.

No timing is asserted here; the numbers live in docs/performance.md.
"""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.bench import report, wrk
from agentmark_gateway.bench.apps import BASELINE_BODY, baseline_app, create_bench_app
from agentmark_gateway.bench.loadgen import percentile
from agentmark_gateway.bench.profile import summarize
from agentmark_gateway.bench.report import Report, Row
from agentmark_gateway.bench.workload import TEMPLATE_PATH, TraceBodies, template_ast


def _report(*rows: Row) -> Report:
    return Report(
        started="2026-11-27T10:00:00+0000",
        command="python -m agentmark_gateway.bench --quick",
        machine={
            "nproc": "2",
            "cpu": "Test CPU",
            "memory": "1.0 GiB",
            "kernel": "Linux",
            "python": "3.11",
        },
        settings={"versions": {"uvicorn": "0"}},
        rows=list(rows),
    )


def _row(row_id: str, rate: float, **fields) -> Row:
    statuses = fields.pop("statuses", {200: int(rate * 10)})
    return Row(
        row_id,
        f"scenario {row_id}",
        1,
        32,
        rate=rate,
        statuses=statuses,
        p50_ms=1.0,
        p99_ms=2.5,
        peak_mib=[80.0],
        **fields,
    )


def test_table_shows_each_scenario_with_its_share_of_the_baseline():
    table = report.table(_report(_row("a", 10_000), _row("b", 4_000)))
    b_line = next(line for line in table.splitlines() if line.startswith("| b "))
    assert "4,000" in b_line and "| 0.40 |" in b_line and "| 2.50 |" in b_line
    assert "200: 40,000" in b_line


def test_cpu_per_request_gives_a_second_share_steadier_on_a_busy_machine():
    result = _report(_row("a", 10_000, cpu_us=50.0), _row("b", 4_000, cpu_us=200.0))
    b_line = next(line for line in report.table(result).splitlines() if line.startswith("| b "))
    assert "| 200 | 0.25 |" in b_line
    judged = {t.name: t for t in report.targets(result)}
    assert judged["(b) >= 0.85 of (a)"].measured == "0.40 (by CPU per request: 0.25)"


def test_a_skipped_scenario_says_why():
    skipped = Row("c", "auth off", 1, 32, skipped="GET /v1/templates answers 404")
    assert "skipped: GET /v1/templates answers 404" in report.table(_report(_row("a", 1), skipped))


def test_unexpected_statuses_are_flagged_in_the_table_and_the_targets():
    rejected = _row("f401", 9_000, expected_status=401, statuses={401: 10, 500: 1})
    result = _report(_row("a", 10_000), rejected)
    assert "(unexpected)" in report.table(result)
    assert any(
        t.name == "f401 answered as expected" and t.met is False for t in report.targets(result)
    )


def test_targets_are_judged_from_ratios_in_the_same_run():
    result = _report(
        _row("a", 10_000),
        _row("b", 4_000, expected_status=200),
        _row("c", 4_200, expected_status=200),
        _row("f401", 8_500, expected_status=401, statuses={401: 1}),
        _row("f403", 7_000, expected_status=403, statuses={403: 1}),
        _row("b-half", 2_000, expected_status=200),
    )
    judged = {t.name: t for t in report.targets(result)}
    assert judged["(b) >= 0.85 of (a)"].met is False
    assert judged["(b) >= 0.9 of (c)"].met is True
    assert judged["(f) 401 >= 0.85 of (a)"].met is True
    assert judged["(f) 403 >= 0.85 of (a)"].met is False
    assert judged["(b) p99 at half of peak <= 10 ms"].met is True
    assert judged["every worker < 200 MiB"].met is True
    assert judged["(e) >= 25,000 spans/s on sqlite, every acknowledged span stored"].met is None


def test_ingest_meets_its_target_only_when_every_acknowledged_span_is_stored():
    fast_but_lossy = _row("e-sqlite", 300, spans_rate=30_000.0, check="1 != 2", check_ok=False)
    judged = {t.name: t for t in report.targets(_report(fast_but_lossy))}
    assert judged["(e) >= 25,000 spans/s on sqlite, every acknowledged span stored"].met is False


def test_scores_and_ingest_are_judged_against_the_bare_app_and_the_ceiling():
    result = _report(
        _row("a", 10_000),
        _row("d", 3_000),
        _row("d-postgresql", 2_000),
        _row("e-sqlite", 300, spans_rate=26_000.0),
        _row("e-ceiling-sqlite", 600, spans_rate=60_000.0, statuses={}, in_process=True),
    )
    judged = {t.name: t for t in report.targets(result)}
    assert judged["(d) on sqlite >= 0.25 of (a), p99 <= 50 ms"].met is True
    assert judged["(d) on postgresql >= 0.25 of (a), p99 <= 50 ms"].met is False
    assert judged["(e) >= 25,000 spans/s on sqlite, every acknowledged span stored"].met is True
    within = judged["(e) on sqlite >= 0.5 of the in-process ceiling"]
    assert within.met is False
    assert within.measured.startswith("0.43")
    assert judged["(e) on postgresql >= 0.5 of the in-process ceiling"].met is None
    # Measured without HTTP, the ceiling has no statuses and is not flagged for it.
    assert not any("e-ceiling" in name for name in judged)


def test_results_are_written_as_markdown_and_json(tmp_path):
    md_path, json_path = report.write(_report(_row("a", 10_000)), tmp_path)
    assert "| a | scenario a |" in md_path.read_text()
    data = json.loads(json_path.read_text())
    assert data["rows"][0]["rate"] == 10_000 and data["targets"]


def test_docs_get_the_latest_table_between_their_markers(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\n{report.DOCS_START}\nold\n{report.DOCS_END}\n\nWhy.\n")
    report.update_docs(_report(_row("a", 12_345)), doc)
    text = doc.read_text()
    assert "old" not in text and "12,345" in text and text.endswith("\n\nWhy.\n")


def test_wrk_script_sets_the_request_and_prints_one_json_summary(tmp_path):
    body = tmp_path / "body.bin"
    request = wrk.Request("POST", "/v1/scores", {"Authorization": 'sk_"x"'}, b"{}")
    script = wrk.lua_script(request, body, mean_delay_ms=8.0)
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Authorization"] = "sk_\\"x\\""' in script
    assert str(body) in script and "function delay()" in script
    assert "function response(status" in script and wrk.MARKER.strip() in script
    assert "function delay()" not in wrk.lua_script(request, None, None)


def test_wrk_output_is_read_from_its_marker_line():
    output = (
        "Running 3s test\n"
        + wrk.MARKER
        + json.dumps(
            {
                "requests": 3000,
                "duration_us": 3_000_000,
                "p50_us": 1500,
                "p99_us": 9000,
                "mean_us": 1700.5,
                "socket_errors": 0,
                "statuses": {"200": 2999, "500": 1},
            }
        )
    )
    result = wrk.parse_output(output)
    assert result.rate == 1000 and result.p50_ms == 1.5 and result.p99_ms == 9.0
    assert result.statuses == {200: 2999, 500: 1}


def test_trace_bodies_are_otlp_json_with_a_new_trace_each_time():
    bodies = TraceBodies(spans=100)
    first, second = (json.loads(bodies.next()) for _ in range(2))
    spans = first["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == 100
    assert len({s["spanId"] for s in spans}) == 100
    trace_ids = {s["traceId"] for s in spans}
    assert len(trace_ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", trace_ids.pop())
    other = second["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    assert other != spans[0]["traceId"]


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) == 0.0


def test_profile_summary_gives_self_and_inclusive_shares():
    raw = "main (a.py:1);handle (b.py:2);query (c.py:3) 3\nmain (a.py:1);handle (b.py:2) 1\n"
    summary = summarize(raw)
    assert "4 samples" in summary
    assert " 75.0%  query (c.py:3)" in summary
    assert "100.0%  handle (b.py:2)" in summary


def test_baseline_app_answers_a_constant_json_body():
    with TestClient(baseline_app) as client:
        response = client.get("/anything")
    assert response.status_code == 200 and response.content == BASELINE_BODY


def test_bench_app_serves_templates_without_a_key_and_the_gateway_does_not(
    admin, client, key_headers, settings
):
    app_id = admin.create_app()
    writer = admin.create_key(app_id, role="full-access")
    published = client.put(
        "/v1/templates",
        params={"path": TEMPLATE_PATH},
        json=template_ast(),
        headers=key_headers(writer),
    )
    assert published.status_code in (200, 201), published.text

    assert client.get("/v1/templates", params={"path": TEMPLATE_PATH}).status_code == 401
    with TestClient(create_bench_app(settings, app_id=app_id)) as bench:
        response = bench.get("/v1/templates", params={"path": TEMPLATE_PATH})
        assert response.status_code == 200, response.text
        assert response.json() == {"data": template_ast()}
        # Only that one route lost its key check.
        assert bench.get("/v1/prompts").status_code == 401


def test_no_normal_app_has_the_bench_route(settings):
    names = [getattr(route, "name", "") for route in create_app(settings).routes]
    assert not [name for name in names if name.startswith("bench")]


def test_bench_servers_run_the_server_of_serve_with_its_settings(monkeypatch, tmp_path):
    from agentmark_gateway.bench import serve as bench_serve
    from agentmark_gateway.cli import http_server
    from agentmark_gateway.cli import serve as serve_command

    seen: list = []

    def fake_run(target, settings, workers):
        seen.append((settings.model_dump(), workers))

    monkeypatch.setattr(http_server, "run", fake_run)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", "test-pepper")
    monkeypatch.setenv("AGENTMARK_SERVER", "granian")
    monkeypatch.delenv("AGENTMARK_DATABASE_URL", raising=False)
    # serve() hands host and port to its workers through the environment.
    monkeypatch.setenv("AGENTMARK_HOST", "127.0.0.1")
    monkeypatch.setenv("AGENTMARK_PORT", "9418")
    serve_command.serve(host=None, port=9999, workers=3, server=None)
    bench_serve.main(["baseline", "--port", "9999", "--workers", "3"])

    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert seen[0][0]["server"] == "granian"


def test_no_share_is_shown_when_the_baseline_served_nothing():
    result = _report(_row("a", 0.0), _row("b", 10))
    b_line = next(line for line in report.table(result).splitlines() if line.startswith("| b "))
    assert b_line.split(" | ")[8] == ""
