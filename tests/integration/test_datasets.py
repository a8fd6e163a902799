"""/v1/datasets: listing, appending and reading rows."""

from __future__ import annotations

import asyncio

import pytest

from agentmark_gateway.datasets import service


@pytest.fixture
def headers(admin, key_headers):
    app_id = admin.create_app("shop")
    return key_headers(admin.create_key(app_id, role="full-access"))


def append(client, headers, name, row):
    return client.post(f"/v1/datasets/{name}/rows", json=row, headers=headers)


def test_the_first_row_creates_the_dataset_and_rows_get_line_numbers(client, headers):
    for expected in (1, 2, 3):
        response = append(client, headers, "math", {"input": {"q": f"{expected}+1"}})
        assert response.status_code == 201, response.text
        assert response.json() == {"data": {"line_number": expected}}


def test_rows_are_listed_in_line_order_with_pagination(client, headers):
    for n in range(5):
        append(client, headers, "math", {"input": {"n": n}, "expected_output": n * 2})
    response = client.get(
        "/v1/datasets/math/rows", params={"limit": 2, "offset": 1}, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    assert [(r["line_number"], r["input"], r["expected_output"]) for r in body["data"]] == [
        (2, {"n": 1}, 2),
        (3, {"n": 2}, 4),
    ]
    assert body["data"][0]["metadata"] is None
    assert "created_at" in body["data"][0]


def test_rows_of_an_unknown_dataset_are_404(client, headers):
    response = client.get("/v1/datasets/missing/rows", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "dataset_not_found"


def test_datasets_are_listed_with_row_counts_and_creation_times(client, headers):
    append(client, headers, "b-set", {"input": {}})
    append(client, headers, "evals%2Fa-set", {"input": {}})
    append(client, headers, "evals%2Fa-set", {"input": {}})
    client.put("/v1/templates", params={"path": "empty.jsonl"}, content=b"", headers=headers)
    response = client.get("/v1/datasets", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [(d["name"], d["row_count"]) for d in body["data"]] == [
        ("b-set", 1),
        ("empty", 0),
        ("evals/a-set", 2),
    ]
    assert all(d["created_at"] and d["updated_at"] for d in body["data"])
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}

    page = client.get("/v1/datasets", params={"limit": 1, "offset": 2}, headers=headers).json()
    assert [d["name"] for d in page["data"]] == ["evals/a-set"]
    assert page["pagination"]["total"] == 3


def test_datasets_by_name_match_the_last_segment_exactly(client, headers):
    for name in ("math", "evals%2Fmath", "evals%2Fmath-hard", "mathematics", "evals%2F100%25_math"):
        append(client, headers, name, {"input": {}})

    def names(leaf: str) -> list[str]:
        listed = client.get("/v1/datasets", params={"name": leaf}, headers=headers).json()
        return [d["name"] for d in listed["data"]]

    assert names("math") == ["evals/math", "math"]
    assert names("%_math") == []  # LIKE wildcards in the name are literal
    assert names("100%_math") == ["evals/100%_math"]


def test_a_name_with_a_slash_is_sent_url_encoded(client, headers):
    assert append(client, headers, "evals%2Fmath", {"input": {"q": 1}}).status_code == 201
    assert append(client, headers, "evals/math", {"input": {"q": 2}}).json() == {
        "data": {"line_number": 2}
    }
    rows = client.get("/v1/datasets/evals%2Fmath/rows", headers=headers).json()["data"]
    assert [r["input"] for r in rows] == [{"q": 1}, {"q": 2}]
    served = client.get("/v1/templates", params={"path": "evals/math.jsonl"}, headers=headers)
    assert served.json()["data"] == [{"input": {"q": 1}}, {"input": {"q": 2}}]


@pytest.mark.parametrize(
    "name",
    [
        "%2e%2e%2Fsecrets",
        "evals%2F..%2Fsecrets",
        "%2Fetc%2Fpasswd",
        "evals%5Cmath",
        "math.jsonl",
        "evals%2F%2Fmath",
        "bad%00name",
    ],
)
def test_bad_dataset_names_are_400(client, headers, name):
    for response in (
        append(client, headers, name, {"input": {}}),
        client.get(f"/v1/datasets/{name}/rows", headers=headers),
    ):
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"]["code"] == "invalid_path_params"
    assert client.get("/v1/datasets", headers=headers).json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-input"),
        pytest.param({"expected_output": "4"}, id="only-expected-output"),
        pytest.param({"input": "2+2"}, id="input-not-an-object"),
        pytest.param({"input": None}, id="input-null"),
        pytest.param({"input": {}, "label": "x"}, id="extra-field"),
        pytest.param({"input": {}, "metadata": "x"}, id="metadata-not-an-object"),
        pytest.param({"input": {"x": "a\x00b"}}, id="nul"),
        pytest.param([{"input": {}}], id="a-list"),
    ],
)
def test_an_appended_row_is_strict(client, headers, body):
    response = append(client, headers, "math", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request_body"
    assert client.get("/v1/datasets", headers=headers).json()["data"] == []


def test_an_appended_row_with_nan_is_400(client, headers):
    response = client.post(
        "/v1/datasets/math/rows",
        content=b'{"input": {"x": NaN}}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "finite" in response.json()["error"]["message"]


def test_concurrent_appends_get_distinct_line_numbers(client, headers):
    """Twenty writers race for a new dataset: one creates it, each row gets its own line."""
    gateway = client.app.state.gateway
    app_id = headers["X-Agentmark-App-Id"]

    async def one(n: int) -> int:
        async with gateway.sessionmaker() as session:
            [line] = await service.append_rows(
                session, app_id=app_id, name="race", rows=[{"input": {"n": n}}]
            )
            return line

    async def race() -> list[int]:
        return await asyncio.gather(*(one(n) for n in range(20)))

    lines = client.portal.call(race)
    assert sorted(lines) == list(range(1, 21))
    rows = client.get("/v1/datasets/race/rows", headers=headers).json()
    assert rows["pagination"]["total"] == 20
    by_line = {r["line_number"]: r["input"]["n"] for r in rows["data"]}
    assert sorted(by_line.values()) == list(range(20))


def test_a_writer_that_loses_the_line_number_race_retries(client, headers, monkeypatch):
    """The unique (dataset, line) constraint is the backstop: a stale line number is retried."""
    gateway = client.app.state.gateway
    app_id = headers["X-Agentmark-App-Id"]
    append(client, headers, "math", {"input": {"n": 0}})
    real_insert = service._insert
    stale = {"left": 1}

    async def insert_once_with_a_taken_number(session, dataset, numbered):
        numbered = list(numbered)
        if stale["left"]:
            stale["left"] -= 1
            numbered = [(1, row) for _, row in numbered]  # line 1 is taken
        await real_insert(session, dataset, numbered)

    monkeypatch.setattr(service, "_insert", insert_once_with_a_taken_number)

    async def work() -> list[int]:
        async with gateway.sessionmaker() as session:
            return await service.append_rows(
                session, app_id=app_id, name="math", rows=[{"input": {"n": 1}}]
            )

    assert client.portal.call(work) == [2]
    assert stale["left"] == 0


def test_a_read_only_key_lists_but_cannot_append(admin, client, key_headers):
    app_id = admin.create_app()
    read_only = key_headers(admin.create_key(app_id, role="read-only"))
    assert client.get("/v1/datasets", headers=read_only).status_code == 200
    denied = append(client, read_only, "math", {"input": {}})
    assert denied.status_code == 403
    assert denied.json()["error"]["required_permission"] == "dataset.write"


def test_another_apps_key_never_sees_the_datasets(admin, client, key_headers):
    app_a = admin.create_app("a")
    app_b = admin.create_app("b")
    key_a = key_headers(admin.create_key(app_a, role="full-access"))
    key_b = key_headers(admin.create_key(app_b, role="full-access"))
    append(client, key_a, "math", {"input": {"owner": "a"}})

    assert client.get("/v1/datasets", headers=key_b).json()["data"] == []
    assert client.get("/v1/datasets/math/rows", headers=key_b).status_code == 404
    # B's first row makes B's own dataset, numbered from 1; A's is untouched.
    assert append(client, key_b, "math", {"input": {"owner": "b"}}).json()["data"] == {
        "line_number": 1
    }
    rows_a = client.get("/v1/datasets/math/rows", headers=key_a).json()["data"]
    assert [r["input"] for r in rows_a] == [{"owner": "a"}]


def test_openapi_names_the_dataset_parameter_as_in_design(client):
    spec = client.get("/v1/openapi.json").json()
    operation = spec["paths"]["/v1/datasets/{datasetName}/rows"]["post"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == ["datasetName"]
    assert operation["x-required-permissions"] == ["dataset.write"]
    imports = spec["paths"]["/v1/datasets/{datasetName}/rows/from-traces"]["post"]
    assert imports["x-required-permissions"] == ["trace.read", "dataset.write"]
    assert "207" in imports["responses"]
