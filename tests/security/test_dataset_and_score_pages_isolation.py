"""The Datasets and Scores pages keep apps apart, and the read role changes nothing.

App A's pages show none of app B's datasets or scores, even filtered by B's values;
B's dataset name and B's trace and span ids under A's address are 404 with nothing of
B in the body, and adding rows from them adds nothing anywhere. A member with the read
role sees every page but no "Add to dataset" form, and a post of it anyway is 403.

Both apps are seeded through the public API (tests/security/seed.py); every name in
B's data contains ``bravo``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.datasets import service as datasets
from agentmark_gateway.datasets.models import HIDDEN_PREFIX
from tests.integration.test_web_security import csrf
from tests.integration.test_web_traces import web_session
from tests.security.seed import Seeded, seed_app

HTMX = {"HX-Request": "true"}


@pytest.fixture
def apps(admin: Any, client: TestClient) -> tuple[Seeded, Seeded]:
    a_id, b_id = admin.create_app("app-a"), admin.create_app("app-b")
    a_key = admin.create_key(a_id, role="full-access")["plaintext_key"]
    b_key = admin.create_key(b_id, role="full-access")["plaintext_key"]
    a = seed_app(client, a_id, a_key, "alpha", traces=1)
    b = seed_app(client, b_id, b_key, "bravo", traces=2)
    web_session(client, "owner@example.com")
    return a, b


def _nothing_of(b: Seeded, text: str, sent: tuple[str, ...] = ()) -> None:
    """No name or id of B's data in ``text``, apart from what the request itself sent."""
    for value in sent:
        text = text.replace(value, "")
    assert "bravo" not in text, text
    for record_id in b.ids:
        assert record_id not in text, f"B's id {record_id} leaked"


def _rows(client: TestClient, app: Seeded, name: str) -> list[dict[str, Any]]:
    """A dataset's rows as the app's own key reads them (404: no such dataset)."""
    answer = client.get(f"/v1/datasets/{name}/rows", headers=app.headers)
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def _append(client: TestClient, app_id: str, name: str, row: dict[str, Any]) -> None:
    """A row written by the service itself, under a name no request could give."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def work() -> None:
        async with gateway.sessionmaker() as session:
            await datasets.append_rows(session, app_id=app_id, name=name, rows=[row])

    client.portal.call(work)  # type: ignore[union-attr]


def _dataset_names(client: TestClient, app: Seeded) -> list[str]:
    answer = client.get("/v1/datasets", headers=app.headers)
    return [item["name"] for item in answer.json()["data"]]


def test_a_s_datasets_and_scores_show_nothing_of_b_even_filtered_by_b_s_values(
    client, apps
) -> None:
    a, b = apps
    base = f"/apps/{a.app_id}"
    pages = [
        ("/datasets", "", a.dataset),
        ("/scores", "", a.score_name),
        ("/scores?name=", b.score_name, "No scores match"),
        ("/scores?source=api&name=", b.score_name, "No scores match"),
        ("/scores?resource=", b.trace_ids[0], "No scores match"),
        ("/scores?start=2000-01-01&end=2999-12-31&resource=", b.trace_ids[1], "No scores match"),
    ]
    for path, value, own in pages:
        page = client.get(base + path + value)
        assert page.status_code == 200, path
        _nothing_of(b, page.text, sent=(value,) if value else ())
        assert own in page.text, path
    # Not vacuous: B's own pages do show B's data.
    assert b.dataset in client.get(f"/apps/{b.app_id}/datasets").text
    assert b.score_name in client.get(f"/apps/{b.app_id}/scores").text
    filtered = client.get(f"/apps/{b.app_id}/scores", params={"resource": b.trace_ids[0]})
    assert b.score_name in filtered.text


def test_b_s_dataset_under_a_s_address_is_not_found(client, apps) -> None:
    a, b = apps
    for path in (
        f"/apps/{a.app_id}/datasets/{b.dataset}",
        f"/apps/{a.app_id}/datasets/{b.dataset}?page=2",
    ):
        for headers in ({}, HTMX):
            page = client.get(path, headers=headers)
            assert page.status_code == 404, f"{path} {headers}: {page.status_code}"
            _nothing_of(b, page.text, sent=(b.dataset,))
            assert f"row-{b.tag}" not in page.text
    # A hidden dataset (an upload still being written, or one being deleted) is not found
    # on its own app's address either, nor any other name no dataset can have.
    _append(client, a.app_id, f"{HIDDEN_PREFIX}upload/x", {"input": {"q": "half-written"}})
    for odd in ("%01upload/x", "%01upload%2Fx", f"{a.dataset}.jsonl"):
        page = client.get(f"/apps/{a.app_id}/datasets/{odd}")
        assert page.status_code == 404, odd
        assert "half-written" not in page.text
    # Not vacuous: the same name opens under B's own address.
    own = client.get(f"/apps/{b.app_id}/datasets/{b.dataset}")
    assert own.status_code == 200
    assert "row-bravo" in own.text


def test_adding_b_s_trace_or_span_from_a_s_address_is_not_found_and_adds_nothing(
    client, apps
) -> None:
    a, b = apps
    token = csrf(client.get(f"/apps/{a.app_id}/traces/{a.trace_ids[0]}").text)
    before = (_dataset_names(client, a), _rows(client, b, b.dataset))
    tries = [
        (b.trace_ids[0], ""),
        (b.trace_ids[0].upper(), ""),
        (b.trace_ids[0], b.span_ids[0]),
        (a.trace_ids[0], b.span_ids[0]),  # A's trace, B's span
    ]
    for trace_id, span_id in tries:
        for dataset in ("stolen", b.dataset):
            for headers in ({}, HTMX):
                answer = client.post(
                    f"/apps/{a.app_id}/traces/{trace_id}/dataset-rows",
                    data={"dataset": dataset, "span": span_id, "csrf_token": token},
                    headers=headers,
                    follow_redirects=False,
                )
                where = f"{trace_id} {span_id} {dataset} {headers}"
                assert answer.status_code == 404, f"{where}: {answer.status_code}"
                _nothing_of(b, answer.text, sent=(trace_id, trace_id.lower(), span_id, dataset))
    assert (_dataset_names(client, a), _rows(client, b, b.dataset)) == before
    assert _rows(client, a, "stolen") == [] and _rows(client, b, "stolen") == []


def test_an_owner_adds_a_row_from_a_trace_and_from_one_of_its_spans(client, apps) -> None:
    a, _b = apps
    trace_url = f"/apps/{a.app_id}/traces/{a.trace_ids[0]}"
    page = client.get(trace_url)
    assert 'id="dataset-names"' in page.text and f'<option value="{a.dataset}">' in page.text
    token = csrf(page.text)
    added = client.post(
        f"{trace_url}/dataset-rows",
        data={"dataset": "evals/qa", "csrf_token": token},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert added.headers["location"] == f"/apps/{a.app_id}/datasets/evals/qa?page=1&added=1#line-1"
    flash = client.post(
        f"{trace_url}/dataset-rows",
        data={"dataset": "evals/qa", "span": a.span_ids[1], "csrf_token": token},
        headers=HTMX,
    )
    assert flash.status_code == 200
    assert "Row 2 added to" in flash.text
    assert f'href="/apps/{a.app_id}/datasets/evals/qa?page=1#line-2"' in flash.text
    rows = _rows(client, a, "evals/qa")
    assert [row["input"] for row in rows[:1]] == [{"question": "ask-alpha"}]
    assert rows[0]["expected_output"] == "said-alpha"
    assert rows[1]["metadata"]["source_span_id"] == a.span_ids[1]
    # What the API's import makes of the same trace is the same row.
    api = client.post(
        "/v1/datasets/evals/api/rows/from-traces",
        json={"trace_ids": [a.trace_ids[0]]},
        headers=a.headers,
    )
    assert api.status_code == 201, api.text
    assert _rows(client, a, "evals/api")[0]["input"] == rows[0]["input"]
    shown = client.get(f"/apps/{a.app_id}/datasets/evals/qa")
    assert "ask-alpha" in shown.text and "said-alpha" in shown.text
    # A name the dataset rules refuse is a 400 beside the form; nothing is added.
    refused = client.post(
        f"{trace_url}/dataset-rows",
        data={"dataset": "evals/../x", "csrf_token": token},
        headers=HTMX,
    )
    assert refused.status_code == 400
    assert "must not contain" in refused.text
    assert len(_rows(client, a, "evals/qa")) == 2


def test_a_read_member_sees_every_page_and_cannot_add_rows(client, apps) -> None:
    a, _b = apps
    web_session(client, "reader@example.com", role="read")
    trace_url = f"/apps/{a.app_id}/traces/{a.trace_ids[0]}"
    for path in (
        f"/apps/{a.app_id}/datasets",
        f"/apps/{a.app_id}/datasets/{a.dataset}",
        f"/apps/{a.app_id}/scores",
        f"/apps/{a.app_id}/scores?name={a.score_name}",
        trace_url,
        f"{trace_url}?span={a.span_ids[1]}",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "add-to-dataset" not in page.text and "dataset-names" not in page.text, path
    panel = client.get(
        f"{trace_url}?span={a.span_ids[1]}", headers={**HTMX, "HX-Target": "span-detail"}
    )
    assert panel.status_code == 200 and "add-to-dataset" not in panel.text
    token = csrf(client.get(trace_url).text)
    for span_id in ("", a.span_ids[1]):
        for headers in ({}, HTMX):
            refused = client.post(
                f"{trace_url}/dataset-rows",
                data={"dataset": a.dataset, "span": span_id, "csrf_token": token},
                headers=headers,
                follow_redirects=False,
            )
            assert refused.status_code == 403, refused.text
            assert "cannot do this" in refused.text
    assert len(_rows(client, a, a.dataset)) == 1
