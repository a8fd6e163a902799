"""Runs marked the other ways the clients have marked them (CLIENTS.md 4.1, 5.1): the old
AI SDK adapter's ``ai.telemetry.metadata.<key>`` on the Vercel AI SDK's spans, sent as
the old SDK's flat rows, and ``agentmark.metadata.<key>`` over OTLP. Each reads like a
run marked with ``agentmark.<key>``."""

from __future__ import annotations

import json
import secrets
import time
import uuid

import pytest

from tests.fixtures.otlp import legacy_rows
from tests.fixtures.otlp.experiment_runs import Row, post_run, sdk_run

AI = "ai.telemetry.metadata."
QUESTIONS = ["5 + 7", "2 * 3"]
ANSWERS = ["12", "five"]
EXPECTED = ["12", "6"]
SCORES = [1.0, 0.0]


@pytest.fixture
def headers(admin, key_headers):
    return key_headers(admin.create_key(admin.create_app(), role="full-access"))


def _legacy_row_spans(run_id: str, index: int, start: int, *, wrapped: bool):
    """One dataset row as the old adapter records it: ``generateText`` with the run's
    telemetry metadata and a UUID ``traceId`` that replaces the row's TraceId; when
    ``wrapped``, it ran inside a ``trace()`` span, which keeps the original trace id, so
    the marked spans' parent is in another trace."""
    trace_uuid = str(uuid.uuid4())
    metadata = {
        f"{AI}dataset_run_id": run_id,
        f"{AI}dataset_path": "math.dataset.jsonl",
        f"{AI}dataset_run_name": "math-legacy",
        f"{AI}dataset_item_name": index,
        f"{AI}traceName": f"ds-run-math-legacy-{index}",
        f"{AI}traceId": trace_uuid,
        f"{AI}dataset_expected_output": EXPECTED[index],
        f"{AI}prompt_name": "math.prompt.mdx",
        f"{AI}commit_sha": "c0ffee",
    }
    prompt = json.dumps({"prompt": f"What is {QUESTIONS[index]}?"})
    outer, inner = secrets.token_hex(8), secrets.token_hex(8)
    rows = []
    parent = ""
    if wrapped:
        parent = secrets.token_hex(8)
        rows.append(
            legacy_rows.row(
                secrets.token_hex(16), parent, name="runner", start_ns=start, duration_ms=300
            )
        )
    rows.append(
        legacy_rows.row(
            trace_uuid,
            outer,
            name="ai.generateText",
            parent=parent,
            start_ns=start + legacy_rows.MS,
            duration_ms=200,
            attrs={
                **metadata,
                "ai.model.id": "gpt-4o-mini",
                "ai.prompt": prompt,
                "ai.response.text": ANSWERS[index],
            },
        )
    )
    rows.append(
        legacy_rows.row(
            trace_uuid,
            inner,
            name="ai.generateText.doGenerate",
            parent=outer,
            start_ns=start + 2 * legacy_rows.MS,
            duration_ms=150,
            attrs={
                **metadata,
                "ai.model.id": "gpt-4o-mini",
                "gen_ai.request.model": "gpt-4o-mini",
                "ai.prompt.messages": json.dumps(
                    [{"role": "user", "content": f"What is {QUESTIONS[index]}?"}]
                ),
                "gen_ai.usage.prompt_tokens": 30,
                "gen_ai.usage.completion_tokens": 5,
                "ai.response.text": ANSWERS[index],
            },
        )
    )
    return trace_uuid.replace("-", ""), rows


def test_a_run_of_the_old_ai_sdk_adapter_is_listed_with_its_items(client, headers):
    run_id = str(uuid.uuid4())
    start = time.time_ns()
    trace_ids = []
    for index in range(2):
        trace_id, rows = _legacy_row_spans(
            run_id, index, start + index * 1000 * legacy_rows.MS, wrapped=index == 1
        )
        trace_ids.append(trace_id)
        # The old SDK sends one request per span without batching.
        for row in rows:
            response = client.post("/v1/export-traces", json=[row], headers=headers)
            assert response.status_code == 200, response.text
    for trace_id, score in zip(trace_ids, SCORES, strict=True):
        response = client.post(
            "/v1/score",
            json={"resourceId": trace_id, "score": score, "name": "exact", "type": "experiment"},
            headers=headers,
        )
        assert response.status_code in (200, 201), response.text

    listed = client.get("/v1/experiments", headers=headers)
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["data"]
    assert summary["id"] == run_id
    assert (summary["name"], summary["datasetPath"]) == ("math-legacy", "math.dataset.jsonl")
    assert (summary["promptName"], summary["commitSha"]) == ("math.prompt.mdx", "c0ffee")
    assert summary["itemCount"] == 2
    assert summary["avgScore"] == pytest.approx(0.5)
    assert summary["totalTokens"] == 2 * 35

    detail = client.get(f"/v1/experiments/{run_id}", headers=headers)
    assert detail.status_code == 200, detail.text
    items = detail.json()["data"]["items"]
    assert [item["traceId"] for item in items] == trace_ids
    assert [item["itemName"] for item in items] == ["0", "1"]
    assert [item["expectedOutput"] for item in items] == EXPECTED
    assert [item["output"] for item in items] == ANSWERS
    for item, question in zip(items, QUESTIONS, strict=True):
        assert question in item["input"]
        assert item["latencyMs"] == pytest.approx(200)
        assert (item["model"], item["tokens"]) == ("gpt-4o-mini", 35)
    assert [[s["score"] for s in item["scores"]] for item in items] == [[1.0], [0.0]]


def test_a_run_marked_as_agentmark_metadata_reads_as_one_marked_directly(client, headers):
    rows = [
        Row(input={"question": q}, expected=e, output=a, scores={"exact": s})
        for q, e, a, s in zip(QUESTIONS, EXPECTED, ANSWERS, SCORES, strict=True)
    ]
    run_id = str(uuid.uuid4())
    run = sdk_run(rows, run_id=run_id, experiment_key="math-meta", dataset_path=None)
    for span in run.spans:
        for attribute in span["attributes"]:
            key = attribute["key"]
            if key.startswith("agentmark.dataset_") or key == "agentmark.prompt_name":
                attribute["key"] = "agentmark.metadata." + key.removeprefix("agentmark.")
        if "parentSpanId" not in span:
            span["attributes"] += [
                {"key": "agentmark.metadata.dataset_path", "value": {"stringValue": "m.jsonl"}},
                {"key": "agentmark.metadata.prompt_name", "value": {"stringValue": "m.prompt"}},
                {"key": "agentmark.metadata.props", "value": {"stringValue": "{}"}},
            ]
    post_run(client, headers, run)

    listed = client.get("/v1/experiments", headers=headers, params={"prompt_name": "m.prompt"})
    assert listed.status_code == 200, listed.text
    [summary] = listed.json()["data"]
    assert (summary["id"], summary["name"], summary["datasetPath"]) == (
        run_id,
        "math-meta",
        "m.jsonl",
    )
    assert summary["avgScore"] == pytest.approx(0.5)
    items = client.get(f"/v1/experiments/{run_id}", headers=headers).json()["data"]["items"]
    assert [item["itemName"] for item in items] == ["0", "1"]
    assert [json.loads(item["input"]) for item in items] == [{"question": q} for q in QUESTIONS]
    assert [item["expectedOutput"] for item in items] == [json.dumps(e) for e in EXPECTED]
    assert [[s["score"] for s in item["scores"]] for item in items] == [[1.0], [0.0]]
