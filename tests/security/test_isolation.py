"""App isolation, route by route: app A's full-access key never sees app B's data.

Two apps hold the same kinds of data (traces and spans with session and user
attributes, scores, a template, a dataset, an experiment run); every name in
B's data contains ``bravo``. For each data route of the route table (the one
``docs/permissions.md`` is generated from) a case below proves that A's lists
leave B's records out, B's ids are 404 for A, A's writes never touch B's data,
and metrics count A's traces only. A new data route without a case here fails
``test_every_data_route_has_an_isolation_case``.

Every case also checks that the answer it looked at is not vacuous: B's own key
sees what A's key must not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.otlp import legacy_rows, payloads
from tests.security.routes import call_example, data_routes
from tests.security.seed import DAY, Seeded, seed_app


@dataclass
class World:
    client: TestClient
    a: Seeded
    b: Seeded

    def get(self, app: Seeded, route: str, **params: Any) -> Any:
        return self.client.get(route, params=params, headers=app.headers)

    def a_never_sees_b(
        self, route: str, *, own: str = "alpha", theirs: str = "bravo", **params: Any
    ) -> dict[str, Any]:
        """A's answer has A's data (``own``), none of B's; B's own answer has B's (``theirs``)."""
        seen_by_a = self.get(self.a, route, **params)
        assert seen_by_a.status_code == 200, seen_by_a.text
        self.assert_nothing_of_b(seen_by_a.text)
        assert own in seen_by_a.text, f"{route}: A's own data is missing: {seen_by_a.text}"
        seen_by_b = self.get(self.b, route, **params)
        assert seen_by_b.status_code == 200, seen_by_b.text
        assert theirs in seen_by_b.text, f"{route}: B's data is missing for B: {seen_by_b.text}"
        body: dict[str, Any] = seen_by_a.json()
        return body

    def assert_nothing_of_b(self, text: str, *, sent: tuple[str, ...] = ()) -> None:
        """No name or id of B's data in ``text``, apart from what A itself sent (echoed ids)."""
        for value in sent:
            text = text.replace(value, "")
        assert "bravo" not in text, text
        for record_id in self.b.ids:
            assert record_id not in text, f"B's id {record_id} leaked: {text}"

    def a_gets_404(self, route: str, code: str, *, sent: tuple[str, ...], **params: Any) -> None:
        """B's record is 404 for A, word for word the answer for an id that never existed."""
        response = self.get(self.a, route, **params)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == code
        self.assert_nothing_of_b(response.text, sent=sent)
        assert self.get(self.b, route, **params).status_code == 200, "B cannot read its own record"
        never = [(value, _lookalike(value, n)) for n, value in enumerate(sent)]
        for value, other in never:
            route = route.replace(value, other)
            params = {name: v.replace(value, other) for name, v in params.items()}
        unknown = self.get(self.a, route, **params)
        assert unknown.status_code == 404, unknown.text
        text = unknown.text
        for value, other in never:
            text = text.replace(other, value)
        assert text == response.text

    def total(self, app: Seeded, path: str, **params: Any) -> int:
        response = self.get(app, path, **params)
        assert response.status_code == 200, response.text
        return int(response.json()["pagination"]["total"])


def _lookalike(value: str, n: int = 0) -> str:
    """An id or name of the same shape that no app has (the n-th of a request's)."""
    filler = "edcba"[n]
    if all(c in "0123456789abcdef" for c in value):
        return filler * len(value)
    return value.replace("bravo", filler * 5)


@pytest.fixture
def world(admin, client) -> World:
    a_id, b_id = admin.create_app("app-a"), admin.create_app("app-b")
    a_key = admin.create_key(a_id, role="full-access")["plaintext_key"]
    b_key = admin.create_key(b_id, role="full-access")["plaintext_key"]
    # B has two traces to A's one, so that a count of B's data cannot pass for A's.
    a = seed_app(client, a_id, a_key, "alpha", traces=1)
    b = seed_app(client, b_id, b_key, "bravo", traces=2)
    return World(client, a, b)


# --- traces, spans, sessions -----------------------------------------------------------


def list_traces(w: World) -> None:
    assert w.a_never_sees_b("/v1/traces")["pagination"]["total"] == 1
    for name, value in (
        ("user_id", w.b.user_id),
        ("session_id", w.b.session_id),
        ("tag", "tag-bravo"),
        ("model", "model-bravo"),
        ("dataset_run_id", "run-bravo"),
        ("name", "answer-bravo"),
    ):
        assert w.total(w.a, "/v1/traces", **{name: value}) == 0, name
        assert w.total(w.b, "/v1/traces", **{name: value}) == 2, name


def get_trace(w: World) -> None:
    trace = w.b.trace_ids[0]
    w.a_gets_404(f"/v1/traces/{trace}", "trace_not_found", sent=(trace,))


def list_trace_spans(w: World) -> None:
    trace = w.b.trace_ids[0]
    w.a_gets_404(f"/v1/traces/{trace}/spans", "trace_not_found", sent=(trace,))


def get_span(w: World) -> None:
    trace, span = w.b.trace_ids[0], w.b.span_ids[0]
    w.a_gets_404(f"/v1/traces/{trace}/spans/{span}", "trace_not_found", sent=(trace, span))
    # A's own trace with B's span id: still nothing.
    response = w.get(w.a, f"/v1/traces/{w.a.trace_ids[0]}/spans/{w.b.span_ids[0]}")
    assert response.status_code == 404, response.text


def list_spans(w: World) -> None:
    assert w.a_never_sees_b("/v1/spans")["pagination"]["total"] == 2
    for name, value in (
        ("trace_id", w.b.trace_ids[0]),
        ("user_id", w.b.user_id),
        ("session_id", w.b.session_id),
        ("model", "model-bravo"),
        ("name", "answer-bravo"),
    ):
        assert w.total(w.a, "/v1/spans", **{name: value}) == 0, name
        assert w.total(w.b, "/v1/spans", **{name: value}) > 0, name


def list_sessions(w: World) -> None:
    assert w.a_never_sees_b("/v1/sessions")["pagination"]["total"] == 1
    assert w.total(w.a, "/v1/sessions", search="bravo") == 0
    assert w.total(w.b, "/v1/sessions", search="bravo") == 1


def session_traces(w: World) -> None:
    session = w.b.session_id
    w.a_gets_404(f"/v1/sessions/{session}/traces", "session_not_found", sent=(session,))


def ingest(w: World) -> None:
    """A sends spans with B's trace and span ids: they become A's records, B's stay B's."""
    before = w.get(w.b, f"/v1/traces/{w.b.trace_ids[0]}").json()
    _, spans = payloads.llm_trace(
        trace=w.b.trace_ids[0], user_id="user-intruder", start_ns=payloads.at(f"{DAY}T09:00:00Z")
    )
    spans[0]["spanId"], spans[1]["spanId"] = w.b.span_ids[0], w.b.span_ids[1]
    spans[1]["parentSpanId"] = w.b.span_ids[0]
    payloads.post(w.client, w.a.headers, spans)
    assert w.get(w.b, f"/v1/traces/{w.b.trace_ids[0]}").json() == before
    mine = w.get(w.a, f"/v1/traces/{w.b.trace_ids[0]}").json()["data"]
    assert mine["user_id"] == "user-intruder"
    assert w.total(w.b, "/v1/traces") == 2


# --- scores -------------------------------------------------------------------------


def list_scores(w: World) -> None:
    assert w.a_never_sees_b("/v1/scores")["pagination"]["total"] == 1
    assert w.total(w.a, "/v1/scores", resource_id=w.b.trace_ids[0]) == 0
    assert w.total(w.a, "/v1/scores", name=w.b.score_name) == 0
    assert w.total(w.b, "/v1/scores", name=w.b.score_name) == 1


def get_score(w: World) -> None:
    w.a_gets_404(f"/v1/scores/{w.b.score_id}", "score_not_found", sent=(w.b.score_id,))


def score_names(w: World) -> None:
    assert w.a_never_sees_b("/v1/scores/names")["data"] == [w.a.score_name]


def score_aggregations(w: World) -> None:
    body = w.a_never_sees_b("/v1/scores/aggregations")
    assert [row["name"] for row in body["data"]] == [w.a.score_name]
    assert w.get(w.a, "/v1/scores/aggregations", name=w.b.score_name).json()["data"] == []


def create_score(w: World) -> None:
    """A may score any resource id it likes: the score is A's, B's scores do not change."""
    response = w.client.post(
        "/v1/scores",
        json={"resource_id": w.b.trace_ids[0], "name": w.b.score_name, "score": 0},
        headers=w.a.headers,
    )
    assert response.status_code == 201, response.text
    assert w.get(w.b, "/v1/scores/aggregations").json()["data"][0]["count"] == 1
    assert w.total(w.b, "/v1/scores") == 1


def create_scores(w: World) -> None:
    item = {"resource_id": w.b.trace_ids[0], "name": w.b.score_name, "score": 0}
    response = w.client.post("/v1/scores/batch", json={"scores": [item]}, headers=w.a.headers)
    assert response.status_code == 201, response.text
    assert w.total(w.b, "/v1/scores") == 1


def delete_score(w: World) -> None:
    response = w.client.delete(f"/v1/scores/{w.b.score_id}", headers=w.a.headers)
    assert response.status_code == 404, response.text
    assert w.get(w.b, f"/v1/scores/{w.b.score_id}").status_code == 200


# --- templates ----------------------------------------------------------------------


def get_template(w: World) -> None:
    template, dataset = w.b.template_path, w.b.dataset
    w.a_gets_404("/v1/templates", "template_not_found", sent=(template,), path=template)
    w.a_gets_404("/v1/templates", "dataset_not_found", sent=(dataset,), path=f"{dataset}.jsonl")
    ndjson = {**w.a.headers, "Accept": "application/x-ndjson"}
    response = w.client.get(
        "/v1/templates", params={"path": f"{w.b.dataset}.jsonl"}, headers=ndjson
    )
    assert response.status_code == 404, response.text


def list_prompts(w: World) -> None:
    assert w.a_never_sees_b("/v1/prompts")["data"]["paths"] == [w.a.template_path]
    named = w.get(w.a, "/v1/prompts", name=w.b.prompt_name).json()
    assert named["data"]["paths"] == []


def put_template(w: World) -> None:
    """Publishing at B's path creates A's own template; B's stays as it was."""
    before = w.get(w.b, "/v1/templates", path=w.b.template_path).json()
    ast = {"type": "root", "children": [{"type": "yaml", "value": "name: intruder"}]}
    response = w.client.put(
        "/v1/templates", params={"path": w.b.template_path}, json=ast, headers=w.a.headers
    )
    assert response.status_code == 201, response.text
    assert w.get(w.b, "/v1/templates", path=w.b.template_path).json() == before


def delete_template(w: World) -> None:
    for path in (w.b.template_path, f"{w.b.dataset}.jsonl"):
        response = w.client.delete("/v1/templates", params={"path": path}, headers=w.a.headers)
        assert response.status_code == 404, response.text
        assert w.get(w.b, "/v1/templates", path=path).status_code == 200


# --- datasets -----------------------------------------------------------------------


def list_datasets(w: World) -> None:
    assert w.a_never_sees_b("/v1/datasets")["pagination"]["total"] == 1
    assert w.total(w.a, "/v1/datasets", name=w.b.dataset) == 0


def list_rows(w: World) -> None:
    w.a_gets_404(f"/v1/datasets/{w.b.dataset}/rows", "dataset_not_found", sent=(w.b.dataset,))


def append_row(w: World) -> None:
    """A appending to B's dataset name starts A's own dataset at line 1."""
    response = w.client.post(
        f"/v1/datasets/{w.b.dataset}/rows", json={"input": {"q": "intruder"}}, headers=w.a.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["line_number"] == 1
    rows = w.get(w.b, f"/v1/datasets/{w.b.dataset}/rows").json()
    assert rows["pagination"]["total"] == 1
    assert "intruder" not in str(rows)


def _import_fails(w: World, suffix: str, field: str, ids: list[str]) -> None:
    """B's ids fail for A one by one, each for the reason an id that never existed fails."""
    never = _lookalike(ids[0])
    response = w.client.post(
        f"/v1/datasets/imported/rows/{suffix}", json={field: [*ids, never]}, headers=w.a.headers
    )
    assert response.status_code == 207, response.text
    body = response.json()["data"]
    assert body["added"] == 0
    reasons = {r["error"].replace(r["source_id"], "<id>") for r in body["results"]}
    assert len(reasons) == 1 and {r["status"] for r in body["results"]} == {"failed"}, body
    w.assert_nothing_of_b(response.text, sent=tuple(ids))
    assert w.get(w.a, "/v1/datasets/imported/rows").status_code == 404
    # The same ids work for B: they exist, only not in A's app.
    own = w.client.post(
        f"/v1/datasets/imported/rows/{suffix}", json={field: ids}, headers=w.b.headers
    )
    assert own.status_code == 201, own.text


def import_from_traces(w: World) -> None:
    _import_fails(w, "from-traces", "trace_ids", w.b.trace_ids)


def import_from_spans(w: World) -> None:
    _import_fails(w, "from-spans", "span_ids", w.b.span_ids)


# --- metrics ------------------------------------------------------------------------


def metrics(w: World) -> None:
    params = {"start_date": DAY, "end_date": DAY, "bucket": "day"}
    body = w.a_never_sees_b(
        "/v1/metrics", own='"total_requests":1', theirs='"total_requests":2', **params
    )
    summary = body["data"]["summary"]
    assert summary["total_requests"] == 1
    assert summary["input_tokens"] == w.a.input_tokens
    assert summary["unique_users"] == 1
    assert summary["model_count"] == 1
    theirs = w.get(w.b, "/v1/metrics", **params).json()["data"]["summary"]
    assert theirs["total_requests"] == 2
    assert theirs["input_tokens"] == w.b.input_tokens


# --- experiments --------------------------------------------------------------------


def list_experiments(w: World) -> None:
    assert w.a_never_sees_b("/v1/experiments")["pagination"]["total"] == 1
    assert w.total(w.a, "/v1/experiments", dataset_path="data-bravo.jsonl") == 0


def get_experiment(w: World) -> None:
    run = w.b.experiment_id
    w.a_gets_404(f"/v1/experiments/{run}", "not_found", sent=(run,))


def run_traces(w: World) -> None:
    run = w.b.experiment_id
    w.a_gets_404(f"/v1/runs/{run}/traces", "not_found", sent=(run,))


def baseline(w: World) -> None:
    """A run of another app is no baseline: the answer for a key that never ran."""
    params = {"experiment_key": w.b.experiment_key, "tree_hash": "tree-bravo"}
    seen_by_a = w.get(w.a, "/v1/experiments/baseline", **params)
    assert seen_by_a.status_code == 200, seen_by_a.text
    assert seen_by_a.json() == {"data": {"resolved": None, "rows": []}}
    seen_by_b = w.get(w.b, "/v1/experiments/baseline", **params).json()["data"]
    assert seen_by_b["resolved"]["runId"] == w.b.experiment_id and seen_by_b["rows"]


# --- the rest of the reference API, and the old SDK's routes ---------------------------


def _publish_configs(w: World) -> None:
    for app in (w.a, w.b):
        config = {"scores": {f"score-{app.tag}": {"type": "boolean"}}, "owner": f"team-{app.tag}"}
        response = w.client.put(
            "/v1/templates",
            params={"path": "agentmark.json"},
            json=config,
            headers=app.headers,
        )
        assert response.status_code == 201, response.text


def get_config(w: World) -> None:
    _publish_configs(w)
    w.a_never_sees_b("/v1/config")


def list_score_configs(w: World) -> None:
    _publish_configs(w)
    assert w.a_never_sees_b("/v1/score-configs")["pagination"]["total"] == 1


def get_score_config(w: World) -> None:
    _publish_configs(w)
    name = f"score-{w.b.tag}"
    w.a_gets_404(f"/v1/score-configs/{name}", "score_config_not_found", sent=(name,))


def trace_graph(w: World) -> None:
    trace = w.b.trace_ids[0]
    w.a_gets_404(f"/v1/traces/{trace}/graph", "trace_not_found", sent=(trace,))


def list_requests(w: World) -> None:
    assert w.a_never_sees_b("/v1/requests")["pagination"]["total"] == 1
    assert w.total(w.a, "/v1/requests", user_id=w.b.user_id) == 0
    assert w.total(w.a, "/v1/requests", model="model-bravo") == 0
    assert w.total(w.b, "/v1/requests", model="model-bravo") == 2


def export_traces(w: World) -> None:
    """Old-SDK rows with B's trace and span ids become A's records; B's stay B's."""
    before = w.get(w.b, f"/v1/traces/{w.b.trace_ids[0]}").json()
    rows = [
        legacy_rows.row(
            w.b.trace_ids[0],
            w.b.span_ids[0],
            start_ns=payloads.at(f"{DAY}T09:00:00Z"),
            attrs={"agentmark.user_id": "user-intruder"},
        )
    ]
    response = w.client.post("/v1/export-traces", json=rows, headers=w.a.headers)
    assert response.status_code == 200, response.text
    assert w.get(w.b, f"/v1/traces/{w.b.trace_ids[0]}").json() == before
    mine = w.get(w.a, f"/v1/traces/{w.b.trace_ids[0]}").json()["data"]
    assert mine["user_id"] == "user-intruder"
    assert w.total(w.b, "/v1/traces") == 2


def create_score_legacy(w: World) -> None:
    response = w.client.post(
        "/v1/score",
        json={"resourceId": w.b.trace_ids[0], "name": w.b.score_name, "score": 0},
        headers=w.a.headers,
    )
    assert response.status_code == 201, response.text
    assert w.get(w.b, "/v1/scores/aggregations").json()["data"][0]["count"] == 1
    assert w.total(w.b, "/v1/scores") == 1


Case = Callable[[World], None]

CASES: dict[tuple[str, str], Case] = {
    ("POST", "/v1/traces"): ingest,
    ("GET", "/v1/traces"): list_traces,
    ("GET", "/v1/traces/{traceId}"): get_trace,
    ("GET", "/v1/traces/{traceId}/spans"): list_trace_spans,
    ("GET", "/v1/traces/{traceId}/spans/{spanId}"): get_span,
    ("GET", "/v1/spans"): list_spans,
    ("GET", "/v1/sessions"): list_sessions,
    ("GET", "/v1/sessions/{sessionId}/traces"): session_traces,
    ("POST", "/v1/scores"): create_score,
    ("POST", "/v1/scores/batch"): create_scores,
    ("GET", "/v1/scores"): list_scores,
    ("GET", "/v1/scores/{scoreId}"): get_score,
    ("GET", "/v1/scores/names"): score_names,
    ("GET", "/v1/scores/aggregations"): score_aggregations,
    ("DELETE", "/v1/scores/{scoreId}"): delete_score,
    ("GET", "/v1/templates"): get_template,
    ("GET", "/v1/prompts"): list_prompts,
    ("PUT", "/v1/templates"): put_template,
    ("DELETE", "/v1/templates"): delete_template,
    ("GET", "/v1/datasets"): list_datasets,
    ("GET", "/v1/datasets/{datasetName}/rows"): list_rows,
    ("POST", "/v1/datasets/{datasetName}/rows"): append_row,
    ("POST", "/v1/datasets/{datasetName}/rows/from-traces"): import_from_traces,
    ("POST", "/v1/datasets/{datasetName}/rows/from-spans"): import_from_spans,
    ("GET", "/v1/metrics"): metrics,
    ("GET", "/v1/config"): get_config,
    ("GET", "/v1/score-configs"): list_score_configs,
    ("GET", "/v1/score-configs/{name}"): get_score_config,
    ("GET", "/v1/traces/{traceId}/graph"): trace_graph,
    ("GET", "/v1/requests"): list_requests,
    ("POST", "/v1/export-traces"): export_traces,
    ("POST", "/v1/score"): create_score_legacy,
    ("GET", "/v1/experiments"): list_experiments,
    ("GET", "/v1/experiments/{experimentId}"): get_experiment,
    ("GET", "/v1/experiments/baseline"): baseline,
    ("GET", "/v1/runs/{runId}/traces"): run_traces,
}

DATA_ROUTES = [(method, path) for method, path, _ in data_routes()]


def test_every_data_route_has_an_isolation_case():
    missing = [route for route in DATA_ROUTES if route not in CASES]
    assert not missing, f"add isolation cases in tests/security/test_isolation.py for {missing}"
    assert [m for m, _ in DATA_ROUTES].count("GET") >= 18, "the route table lost its read routes"


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES, ids=[f"{m} {p}" for m, p in DATA_ROUTES])
def test_app_a_never_reaches_app_b_data(world, method, path):
    case = CASES.get((method, path))
    assert case is not None, f"no isolation case for {method} {path}"
    case(world)


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES, ids=[f"{m} {p}" for m, p in DATA_ROUTES])
def test_a_key_sent_with_another_apps_id_is_401_on_every_data_route(world, method, path):
    """A's key names B's app: refused as if unknown, before anything is read or written."""
    before = world.get(world.b, "/v1/traces").json()
    response = call_example(
        world.client,
        method=method,
        path=path,
        app_id=world.a.app_id,
        full_key=world.a.key,
        headers={"Authorization": world.a.key, "X-Agentmark-App-Id": world.b.app_id},
    )
    assert response.status_code == 401, response.text
    assert response.json() == {"error": {"code": "unauthorized", "message": "Not authorized"}}
    assert world.get(world.b, "/v1/traces").json() == before
