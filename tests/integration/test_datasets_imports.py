"""Importing dataset rows from the app's own traces and spans."""

from __future__ import annotations

import json

import pytest

from tests.route_examples.datasets import seed_span

TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT = "b7ad6b7169203331"
CHILD = "00f067aa0ba902b7"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_ROOT = "53995c3f42cd8ad8"
T0 = 1_700_000_000_000_000_000


@pytest.fixture
def app_a(admin, client, key_headers):
    """An app with two traces: one with a root and a child span, one with a single span."""
    app_id = admin.create_app("a")
    seed_span(
        client,
        app_id,
        trace_id=TRACE,
        span_id=ROOT,
        name="triage",
        start_time_ns=T0,
        end_time_ns=T0 + 10**9,
        input=json.dumps({"message": "Where is my parcel?"}),
        output=json.dumps({"queue": "shipping"}),
        model="fixture-model",
        attributes={"gen_ai.request.model": "fixture-model", "agentmark.metadata.team": "support"},
    )
    seed_span(
        client,
        app_id,
        trace_id=TRACE,
        span_id=CHILD,
        parent_span_id=ROOT,
        name="llm call",
        start_time_ns=T0 + 1000,
        end_time_ns=T0 + 2000,
        input="Where is my parcel?",
        output="shipping",
        attributes={"prompt": {"text": "Where is my parcel?"}},
    )
    seed_span(
        client,
        app_id,
        trace_id=OTHER_TRACE,
        span_id=OTHER_ROOT,
        name="no io",
        start_time_ns=T0,
        end_time_ns=T0 + 1,
    )
    return app_id


@pytest.fixture
def headers_a(admin, app_a, key_headers):
    return key_headers(admin.create_key(app_a, role="full-access"))


def rows(client, headers, name="support"):
    return client.get(f"/v1/datasets/{name}/rows", headers=headers).json()["data"]


def test_a_trace_becomes_a_row_from_its_root_span(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-traces", json={"trace_ids": [TRACE]}, headers=headers_a
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "data": {
            "added": 1,
            "results": [{"source_id": TRACE, "status": "created", "line_number": 1}],
        }
    }
    served = client.get("/v1/templates", params={"path": "support.jsonl"}, headers=headers_a)
    assert served.json()["data"] == [
        {
            "input": {"message": "Where is my parcel?"},
            "expected_output": {"queue": "shipping"},
            "metadata": {"source_trace_id": TRACE, "source_span_id": ROOT},
        }
    ]


def test_spans_become_rows_and_plain_text_input_is_wrapped(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-spans",
        json={"span_ids": [CHILD, ROOT.upper()]},
        headers=headers_a,
    )
    assert response.status_code == 201, response.text
    results = response.json()["data"]["results"]
    assert [(r["source_id"], r["line_number"]) for r in results] == [(CHILD, 1), (ROOT, 2)]
    first, second = rows(client, headers_a)
    assert first["input"] == {"input": "Where is my parcel?"}
    assert first["expected_output"] == "shipping"
    assert second["input"] == {"message": "Where is my parcel?"}


def test_a_mapping_picks_attributes_fields_and_json_paths(client, headers_a):
    mapping = {
        "input": "attributes.prompt",
        "expected_output": "output",
        "metadata": {"model": "model", "span": "name", "missing": "attributes.nothing"},
    }
    response = client.post(
        "/v1/datasets/support/rows/from-spans",
        json={"span_ids": [CHILD], "mapping": mapping},
        headers=headers_a,
    )
    assert response.status_code == 201, response.text
    [row] = rows(client, headers_a)
    assert row["input"] == {"text": "Where is my parcel?"}
    assert row["metadata"] == {
        "source_trace_id": TRACE,
        "source_span_id": CHILD,
        "span": "llm call",
    }

    nested = {
        "input": "input",
        "expected_output": "output.queue",
        "metadata": {
            "model": "attributes.gen_ai.request.model",
            "team": "attributes.agentmark.metadata.team",
        },
    }
    response = client.post(
        "/v1/datasets/support/rows/from-traces",
        json={"trace_ids": [TRACE], "mapping": nested},
        headers=headers_a,
    )
    assert response.status_code == 201, response.text
    second = rows(client, headers_a)[1]
    assert second["expected_output"] == "shipping"
    assert second["metadata"]["model"] == "fixture-model"
    assert second["metadata"]["team"] == "support"


def test_unknown_ids_and_ids_without_a_mapped_value_fail_alone_with_207(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-traces",
        json={"trace_ids": [TRACE, "ffffffffffffffffffffffffffffffff", OTHER_TRACE, "not-hex"]},
        headers=headers_a,
    )
    assert response.status_code == 207, response.text
    data = response.json()["data"]
    assert data["added"] == 1
    by_id = {r["source_id"]: r for r in data["results"]}
    assert by_id[TRACE] == {"source_id": TRACE, "status": "created", "line_number": 1}
    assert by_id["ffffffffffffffffffffffffffffffff"]["status"] == "failed"
    assert "not found" in by_id["ffffffffffffffffffffffffffffffff"]["error"]
    assert "no value at 'input'" in by_id[OTHER_TRACE]["error"]
    assert by_id["not-hex"]["status"] == "failed"
    assert len(rows(client, headers_a)) == 1


def test_an_explicitly_mapped_expected_output_must_exist(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-spans",
        json={"span_ids": [ROOT], "mapping": {"expected_output": "output.missing"}},
        headers=headers_a,
    )
    assert response.status_code == 207
    assert "output.missing" in response.json()["data"]["results"][0]["error"]


def test_when_every_id_fails_no_dataset_is_created(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-spans",
        json={"span_ids": ["ffffffffffffffff"]},
        headers=headers_a,
    )
    assert response.status_code == 207
    assert response.json()["data"]["added"] == 0
    assert client.get("/v1/datasets", headers=headers_a).json()["data"] == []


def test_repeated_ids_are_imported_once(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-traces",
        json={"trace_ids": [TRACE, TRACE, TRACE.upper()]},
        headers=headers_a,
    )
    assert response.status_code == 201
    assert response.json()["data"]["added"] == 1


def test_imported_rows_are_appended_after_existing_ones(client, headers_a):
    client.post("/v1/datasets/support/rows", json={"input": {"hand": "made"}}, headers=headers_a)
    response = client.post(
        "/v1/datasets/support/rows/from-spans", json={"span_ids": [ROOT]}, headers=headers_a
    )
    assert response.json()["data"]["results"][0]["line_number"] == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"trace_ids": []}, id="no-ids"),
        pytest.param({"trace_ids": [f"{n:032x}" for n in range(101)]}, id="over-100-ids"),
        pytest.param({"trace_ids": [""]}, id="empty-id"),
        pytest.param({}, id="missing-ids"),
        pytest.param({"trace_ids": [TRACE], "mapping": {"input": "secrets"}}, id="unknown-source"),
        pytest.param({"trace_ids": [TRACE], "mapping": {"input": "attributes"}}, id="no-attr-key"),
        pytest.param({"trace_ids": [TRACE], "mapping": {"input": "input."}}, id="empty-segment"),
        pytest.param({"trace_ids": [TRACE], "mapping": {"label": "name"}}, id="unknown-target"),
        pytest.param({"trace_ids": [TRACE], "extra": 1}, id="extra-field"),
        pytest.param({"span_ids": [ROOT]}, id="span-ids-on-traces"),
    ],
)
def test_a_bad_import_request_is_400_and_imports_nothing(client, headers_a, body):
    response = client.post("/v1/datasets/support/rows/from-traces", json=body, headers=headers_a)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert client.get("/v1/datasets", headers=headers_a).json()["data"] == []


def test_an_unknown_source_is_named_in_the_error(client, headers_a):
    response = client.post(
        "/v1/datasets/support/rows/from-spans",
        json={"span_ids": [ROOT], "mapping": {"input": "{secrets}"}},
        headers=headers_a,
    )
    assert response.status_code == 400
    assert "unknown source '{secrets}'" in response.json()["error"]["message"]


def test_imports_need_both_permissions(admin, app_a, client, key_headers):
    writer = key_headers(admin.create_key(app_a, permissions=["dataset.write"]))
    for route, ids, needed in (
        ("from-traces", {"trace_ids": [TRACE]}, "trace.read"),
        ("from-spans", {"span_ids": [ROOT]}, "span.read"),
    ):
        response = client.post(f"/v1/datasets/support/rows/{route}", json=ids, headers=writer)
        assert response.status_code == 403
        assert response.json()["error"]["required_permission"] == needed
    reader = key_headers(admin.create_key(app_a, permissions=["trace.read", "span.read"]))
    response = client.post(
        "/v1/datasets/support/rows/from-traces", json={"trace_ids": [TRACE]}, headers=reader
    )
    assert response.json()["error"]["required_permission"] == "dataset.write"


def test_another_apps_ids_are_never_imported(admin, app_a, client, key_headers):
    app_b = admin.create_app("b")
    key_b = key_headers(admin.create_key(app_b, role="full-access"))
    for route, ids in (
        ("from-traces", {"trace_ids": [TRACE, OTHER_TRACE]}),
        ("from-spans", {"span_ids": [ROOT, CHILD]}),
    ):
        response = client.post(f"/v1/datasets/support/rows/{route}", json=ids, headers=key_b)
        assert response.status_code == 207, response.text
        data = response.json()["data"]
        assert data["added"] == 0
        assert all(r["status"] == "failed" and "not found" in r["error"] for r in data["results"])
    assert client.get("/v1/datasets", headers=key_b).json()["data"] == []


def test_a_span_id_shared_by_two_traces_of_the_app_is_ambiguous(client, app_a, headers_a):
    seed_span(
        client,
        app_a,
        trace_id=OTHER_TRACE,
        span_id=ROOT,
        start_time_ns=T0,
        end_time_ns=T0 + 1,
        input="{}",
    )
    response = client.post(
        "/v1/datasets/support/rows/from-spans", json={"span_ids": [ROOT]}, headers=headers_a
    )
    assert response.status_code == 207
    assert "several traces" in response.json()["data"]["results"][0]["error"]


def test_a_trace_sent_through_the_ingest_route_imports_as_a_row(admin, client, key_headers):
    app_id = admin.create_app("ingested")
    headers = key_headers(admin.create_key(app_id, role="full-access"))

    def attribute(key, value):
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": TRACE,
        "spanId": ROOT,
        "name": "triage",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 10**9),
        "attributes": [
            attribute("gen_ai.request.input", json.dumps({"message": "Refund please"})),
            attribute("gen_ai.response.output", "billing"),
        ],
    }
    otlp = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "test"}, "spans": [span]}]}]}
    assert client.post("/v1/traces", json=otlp, headers=headers).status_code == 200

    response = client.post(
        "/v1/datasets/refunds/rows/from-traces", json={"trace_ids": [TRACE]}, headers=headers
    )
    assert response.status_code == 201, response.text
    served = client.get("/v1/templates", params={"path": "refunds.jsonl"}, headers=headers)
    assert served.json()["data"] == [
        {
            "input": {"message": "Refund please"},
            "expected_output": "billing",
            "metadata": {"source_trace_id": TRACE, "source_span_id": ROOT},
        }
    ]
