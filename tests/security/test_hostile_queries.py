"""Hostile query strings and paths, for every query parameter the API document names:
SQL metacharacters, invalid dates, negative and huge limits and offsets, unknown
filters, path traversal in template and dataset names. A 4xx in the envelope (or,
for a filter, an honest empty answer), never a 500, never a hang, and the data
is the same afterwards."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.security.support import assert_envelope, http_request, raw_request

SQL = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "1; DROP TABLE spans; --",
    '" OR ""="',
    "' UNION SELECT digest, app_id FROM api_keys --",
    "'; SELECT pg_sleep(5); --",
    "%",
    "_",
    "%%",
    "\\",
    "\\'",
    "$1",
    "?",
    ")",
    "*",
    "::text",
    "\u202e\u0027",
]

# Answers a filter may give to a value nothing matches.
EMPTY_OR_REFUSED = (200, 400, 404)
# Parameters that choose what to read or how to order it, not which rows match.
NOT_FILTERS = frozenset({"path", "app_id", "promptKind", "sort_order"})
# The baseline's tree_hash names the preferred run (any other value falls back to the
# newest), and its dataset_path is accepted and ignored, as upstream does.
NOT_FILTERS_OF = {
    ("/v1/experiments/baseline", "tree_hash"),
    ("/v1/experiments/baseline", "dataset_path"),
}


def _spec(live) -> dict[str, Any]:
    with live.http() as http:
        document: dict[str, Any] = http.get("/v1/openapi.json").json()
    return document


def _query_operations(live) -> list[tuple[str, str, list[dict[str, Any]], bool]]:
    """(concrete path, template, query parameters, data route?) of every GET with a query."""
    app = live.app
    values = {
        "{traceId}": app.trace_ids[0],
        "{spanId}": app.span_ids[0],
        "{sessionId}": app.session_id,
        "{scoreId}": app.score_id,
        "{experimentId}": app.experiment_id,
        "{runId}": app.experiment_id,
        "{datasetName}": app.dataset,
        "{app_id}": app.app_id,
    }
    found = []
    for template, operations in _spec(live)["paths"].items():
        operation = operations.get("get")
        if operation is None:
            continue
        query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        if not query:
            continue
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        data = "x-required-permissions" in operation
        found.append((path, template, query, data))
    return found


def _headers(live, data: bool) -> dict[str, str]:
    return live.data_headers if data else live.session_headers


def _required(path: str, live) -> dict[str, str]:
    """Values for the parameters a route cannot do without, so that the one under test counts."""
    if path == "/v1/templates":
        return {"path": live.app.template_path}
    if path == "/v1/experiments/baseline":
        return {"experiment_key": live.app.experiment_key, "tree_hash": "any-tree"}
    return {}


def _is_empty(body: dict[str, Any]) -> bool:
    data = body.get("data")
    if "pagination" in body:
        return bool(body["pagination"]["total"] == 0 and data == [])
    if isinstance(data, dict) and "paths" in data:
        return bool(data["paths"] == [])
    if isinstance(data, dict) and "rows" in data:  # the baseline: no run resolved
        return bool(data["resolved"] is None and data["rows"] == [])
    return data == []


def _unchanged(live) -> None:
    with live.http() as http:
        for path, total in (("/v1/traces", 1), ("/v1/spans", 2), ("/v1/scores", 1)):
            body = http.get(path, headers=live.data_headers).json()
            assert body["pagination"]["total"] == total, (path, body)
        assert http.get("/v1/api-keys", headers=live.session_headers).status_code == 200


def test_the_walk_covers_every_list_route(live):
    templates = {template for _, template, _, _ in _query_operations(live)}
    for expected in ("/v1/traces", "/v1/spans", "/v1/sessions", "/v1/scores", "/v1/datasets"):
        assert expected in templates
    assert "/v1/experiments" in templates and "/v1/audit-log" in templates


def test_sql_metacharacters_in_every_query_parameter_find_nothing_and_break_nothing(live):
    with live.http() as http:
        for path, template, query, data in _query_operations(live):
            for parameter in query:
                for value in SQL:
                    params = {**_required(template, live), parameter["name"]: value}
                    started = time.monotonic()
                    response = http.get(path, params=params, headers=_headers(live, data))
                    where = f"{template} {parameter['name']}={value!r}"
                    assert time.monotonic() - started < 4, f"{where} was slow"
                    assert response.status_code in EMPTY_OR_REFUSED, f"{where}: {response.text}"
                    if response.status_code != 200:
                        assert_envelope(response.status_code, response.content)
                    elif (
                        parameter["name"] not in NOT_FILTERS
                        and (template, parameter["name"]) not in NOT_FILTERS_OF
                    ):
                        assert _is_empty(response.json()), f"{where} matched: {response.text}"
    _unchanged(live)


BAD_DATES = [
    "yesterday",
    "2025-13-01",
    "2025-02-30",
    "2025-01-01T25:00:00",
    "0000-01-01",
    "99999-01-01",
    "2025-01-01T00:00:00+25:00",
    "1e10",
    "-1",
    "2025-01-01 and then some",
    "NaN",
    "9999-12-31T23:59:59.999999-23:59",
]


def _date_parameters(query: list[dict[str, Any]]) -> list[str]:
    return [p["name"] for p in query if "date" in p["name"] or p["name"] == "since"]


def test_invalid_dates_are_400_on_every_date_parameter(live):
    checked = 0
    with live.http() as http:
        for path, template, query, data in _query_operations(live):
            for name in _date_parameters(query):
                for value in BAD_DATES:
                    params = {**_required(template, live), name: value}
                    response = http.get(path, params=params, headers=_headers(live, data))
                    error = assert_envelope(response.status_code, response.content, expected=400)
                    assert error["code"] == "invalid_query_params", (template, name, value)
                    checked += 1
    assert checked >= 8 * len(BAD_DATES)


BAD_LIMITS = ["-1", "0", "1001", "100000000000000000000", "abc", "1.5", "1e3", " ", "0x10"]
BAD_OFFSETS = ["-1", "2147483648", "1000000000000000000000000000000", "abc", "1.5"]


def test_negative_huge_and_malformed_limits_and_offsets_are_400(live):
    checked = 0
    with live.http() as http:
        for path, template, query, data in _query_operations(live):
            names = {p["name"] for p in query}
            if "limit" not in names:
                continue
            for name, values in (("limit", BAD_LIMITS), ("offset", BAD_OFFSETS)):
                for value in values:
                    params = {**_required(template, live), name: value}
                    response = http.get(path, params=params, headers=_headers(live, data))
                    error = assert_envelope(response.status_code, response.content, expected=400)
                    assert error["code"] == "invalid_query_params"
                    assert name in error["message"], error
                    checked += 1
            # The largest page the route allows (1000, or the reference's 200 for runs).
            [limit] = [p["schema"].get("maximum", 1000) for p in query if p["name"] == "limit"]
            extreme = http.get(
                path, params={"limit": limit, "offset": 2**31 - 1}, headers=_headers(live, data)
            )
            assert extreme.status_code == 200, f"{template}: {extreme.text}"
            assert extreme.json()["data"] == []
    assert checked >= 10 * (len(BAD_LIMITS) + len(BAD_OFFSETS))


def test_unknown_filters_on_data_routes_are_400_not_ignored(live):
    checked = 0
    with live.http() as http:
        for path, template, query, data in _query_operations(live):
            if not data:
                continue
            for name in ("no_such_filter", "usr_id", "filter", "app_id"):
                params = {**_required(template, live), name: "x"}
                response = http.get(path, params=params, headers=live.data_headers)
                error = assert_envelope(response.status_code, response.content, expected=400)
                assert error["code"] == "invalid_query_params"
                assert f"'{name}'" in error["message"], error
                checked += 1
    assert checked >= 4 * 10


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/sessions"])
def test_an_invalid_sort_order_is_400_even_without_a_sort_key(live, path):
    with live.http() as http:
        response = http.get(path, params={"sort_order": "sideways"}, headers=live.data_headers)
        error = assert_envelope(response.status_code, response.content, expected=400)
        assert "sort_order" in error["message"]


def test_a_known_filter_given_twice_is_not_an_unknown_one(live):
    with live.http() as http:
        response = http.get(
            "/v1/traces",
            params=[("tag", "tag-alpha"), ("tag", "tag-alpha")],
            headers=live.data_headers,
        )
        assert response.status_code == 200
        assert response.json()["pagination"]["total"] == 1


TRAVERSAL = [
    "../secrets.prompt.mdx",
    "../../../../etc/passwd.jsonl",
    "prompts/../../outside.prompt.mdx",
    "prompts/alpha.prompt.mdx/../../beta.prompt.mdx",
    "./alpha.prompt.mdx",
    "/etc/alpha.prompt.mdx",
    "..\\..\\windows\\system.ini.jsonl",
    "C:\\alpha.prompt.mdx",
    "prompts//alpha.prompt.mdx",
    "prompts/\x00.prompt.mdx",
    "prompts/\u2025/x.prompt.mdx/..",
]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_path_traversal_in_template_paths_is_400(live, method):
    with live.http() as http:
        for path in TRAVERSAL:
            response = http.request(
                method,
                "/v1/templates",
                params={"path": path},
                content=json.dumps({"type": "root", "children": []}),
                headers={**live.data_headers, "Content-Type": "application/json"},
            )
            error = assert_envelope(response.status_code, response.content, expected=400)
            assert error["code"] == "invalid_query_params", (path, error)
        prompts = http.get("/v1/prompts", headers=live.data_headers).json()["data"]["paths"]
        assert prompts == [live.app.template_path]


# Sent as raw request targets: an HTTP client would resolve the dot segments itself.
DATASET_TARGETS = [
    "/v1/datasets/../../etc/rows",
    "/v1/datasets/..%2F..%2Fetc/rows",
    "/v1/datasets/%2e%2e/rows",
    "/v1/datasets/%2E%2E%2F%2E%2E%2Fgateway.db/rows",
    "/v1/datasets/evals/../../x/rows",
    "/v1/datasets/%2Fetc%2Fpasswd/rows",
    "/v1/datasets/..%5C..%5Cwindows/rows",
    "/v1/datasets/x%00y/rows",
    "/v1/datasets/evals%2F%2Fdouble/rows",
    "/v1/datasets/./rows",
]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", b""),
        ("POST", "", b'{"input": {"q": 1}}'),
        ("POST", "/from-traces", b'{"trace_ids": ["0af7651916cd43dd8448eb211c80319c"]}'),
    ],
    ids=["read", "append", "import"],
)
def test_path_traversal_in_dataset_names_is_refused(live, method, suffix, body):
    headers = [
        (b"Authorization", live.app.key.encode()),
        (b"X-Agentmark-App-Id", live.app.app_id.encode()),
        (b"Content-Type", b"application/json"),
    ]
    for target in DATASET_TARGETS:
        response = raw_request(live.port, http_request(method, target + suffix, headers, body))
        assert response.status in (400, 404), f"{target}: {response.raw[:300]!r}"
        assert_envelope(response.status, response.body)
    with live.http() as http:
        datasets = http.get("/v1/datasets", headers=live.data_headers).json()["data"]
        assert [d["name"] for d in datasets] == [live.app.dataset]
