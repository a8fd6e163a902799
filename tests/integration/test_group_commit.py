"""Group commit: the spans and scores of requests waiting at once share one transaction.

Each test runs on whichever database the suite runs on. Requests are sent
concurrently through the ASGI app in the test client's event loop, where the
gateway's writer runs, so they really wait together.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.db.group_commit import GroupCommit
from agentmark_gateway.errors import ServiceUnavailable
from agentmark_gateway.pricing import price_table
from agentmark_gateway.runtime import Gateway
from agentmark_gateway.scores import service as scores
from agentmark_gateway.scores.models import Score
from agentmark_gateway.scores.schemas import ScoreCreate
from agentmark_gateway.traces import ingest
from agentmark_gateway.traces.models import Span, Trace
from tests.fixtures.otlp import payloads
from tests.integration.test_ingest_bulk_insert import _varied_batch


@pytest.fixture
def sdk(admin: Any, key_headers: Callable[[dict[str, Any]], dict[str, str]]) -> dict[str, str]:
    app_id = admin.create_app()
    return key_headers(admin.create_key(app_id, role="full-access"))


def _gateway(client: Any) -> Gateway:
    gateway: Gateway = client.app.state.gateway
    return gateway


def _in_loop(client: Any, work: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    """Runs ``work`` with an HTTP client on the app, in the loop the gateway's writer runs in."""

    async def go() -> Any:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            return await work(http)

    return client.portal.call(go)


def _score(resource: str = "trace-1", **extra: Any) -> dict[str, Any]:
    return {"resourceId": resource, "name": "accuracy", "score": 0.5, **extra}


def _traces_body(spans: int = 5) -> bytes:
    trace = payloads.trace_id()
    document = payloads.request([payloads.span(trace, name=f"s{n}") for n in range(spans)])
    return json.dumps(document).encode()


def _count(client: Any, model: Any, app_id: str) -> int:
    async def count() -> int:
        async with _gateway(client).sessionmaker() as session:
            return int(
                await session.scalar(select(func.count()).where(model.app_id == app_id)) or 0
            )

    return int(client.portal.call(count))


@contextmanager
def _commits(client: Any) -> Iterator[list[int]]:
    """Counts the commits of the gateway's engine, while the block runs, that stored
    spans or scores: the background tasks (usage counts, last used, roll-ups) commit
    on the same engine now and then, and are not what is counted here."""
    seen: list[int] = []
    wrote: set[int] = set()  # connections that stored rows since their last commit
    engine = _gateway(client).engine.sync_engine

    def on_execute(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.match(r"\s*INSERT INTO (spans|scores)\b", statement, re.IGNORECASE):
            wrote.add(id(connection.connection.dbapi_connection))

    def on_commit(connection: Any) -> None:
        if id(connection.connection.dbapi_connection) in wrote:
            wrote.discard(id(connection.connection.dbapi_connection))
            seen.append(1)

    def on_rollback(connection: Any) -> None:
        wrote.discard(id(connection.connection.dbapi_connection))

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "rollback", on_rollback)
    try:
        yield seen
    finally:
        event.remove(engine, "rollback", on_rollback)
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_execute)


def test_scores_and_spans_sent_at_once_share_one_commit(client: Any, sdk: dict[str, str]) -> None:
    async def send(http: httpx.AsyncClient) -> list[httpx.Response]:
        posts = [http.post("/v1/scores", json=_score(f"t{n}"), headers=sdk) for n in range(12)]
        posts += [http.post("/v1/score", json=_score("legacy"), headers=sdk)]
        posts += [
            http.post(
                "/v1/traces",
                content=_traces_body(),
                headers={**sdk, "Content-Type": "application/json"},
            )
            for _ in range(3)
        ]
        return await asyncio.gather(*posts)

    with _commits(client) as commits:
        answers = _in_loop(client, send)
    assert [a.status_code for a in answers] == [201] * 13 + [200] * 3
    assert _count(client, Score, sdk["X-Agentmark-App-Id"]) == 13
    assert _count(client, Span, sdk["X-Agentmark-App-Id"]) == 15
    # One request alone would be one commit each: 16. Waiting together, a few.
    assert 1 <= len(commits) <= 4, commits


def test_an_acknowledged_score_is_already_committed(client: Any, sdk: dict[str, str]) -> None:
    """Read from another connection the moment the answer arrives: the row is there."""

    async def send(http: httpx.AsyncClient) -> list[int]:
        async def one(n: int) -> int:
            answer = await http.post("/v1/scores", json=_score(f"r{n}"), headers=sdk)
            assert answer.status_code == 201
            score_id = answer.json()["data"]["id"]
            async with _gateway(client).sessionmaker() as session:
                return int(
                    await session.scalar(select(func.count()).where(Score.id == score_id)) or 0
                )

        return await asyncio.gather(*(one(n) for n in range(8)))

    assert _in_loop(client, send) == [1] * 8


def test_the_same_spans_sent_twice_at_once_are_stored_once(
    client: Any, sdk: dict[str, str]
) -> None:
    trace = payloads.trace_id()
    body = json.dumps(payloads.request([payloads.span(trace, name=f"s{n}") for n in range(4)]))

    async def send(http: httpx.AsyncClient) -> list[httpx.Response]:
        headers = {**sdk, "Content-Type": "application/json"}
        return await asyncio.gather(
            *(http.post("/v1/traces", content=body, headers=headers) for _ in range(3))
        )

    answers = _in_loop(client, send)
    assert [a.status_code for a in answers] == [200] * 3
    assert [a.json()["data"]["accepted_spans"] for a in answers] == [4] * 3
    app_id = sdk["X-Agentmark-App-Id"]
    assert _count(client, Span, app_id) == 4

    async def span_count() -> int:
        async with _gateway(client).sessionmaker() as session:
            return int(
                await session.scalar(select(Trace.span_count).where(Trace.app_id == app_id)) or 0
            )

    assert client.portal.call(span_count) == 4


def test_a_request_whose_rows_the_database_refuses_fails_alone(
    client: Any, sdk: dict[str, str]
) -> None:
    """A score for an app that does not exist breaks the shared transaction; retried one
    by one, only it fails, with its own error, and the others are stored."""
    app_id = sdk["X-Agentmark-App-Id"]
    writes = _gateway(client).writes
    item = ScoreCreate.model_validate(_score())
    spans = _varied_batch()

    async def send() -> tuple[Any, ...]:
        return await asyncio.gather(
            scores.write_scores(writes, app_id=app_id, scores=[item]),
            scores.write_scores(writes, app_id=str(uuid.uuid4()), scores=[item]),
            ingest.write_spans(writes, app_id=app_id, spans=spans, prices=price_table()),
            scores.write_scores(writes, app_id=app_id, scores=[item, item]),
            return_exceptions=True,
        )

    with _commits(client) as commits:
        first, bad, spans_accepted, second = client.portal.call(send)
    assert isinstance(bad, IntegrityError)
    assert len(first) == 1 and len(second) == 2
    assert spans_accepted == len(spans)
    assert _count(client, Score, app_id) == 3
    assert _count(client, Span, app_id) == len(spans)
    assert len(commits) == 3  # the three good requests, each alone after the retry


def _unreachable_sessionmaker(client: Any, tmp_path: Any) -> Any:
    """A database of the same kind that cannot be reached: an outage."""
    if _gateway(client).engine.dialect.name == "postgresql":
        url = "postgresql://postgres@127.0.0.1:9/none"
    else:
        # Read-write without create, in a folder that does not exist: cannot open.
        url = f"sqlite:///file:{tmp_path}/missing/gateway.db?mode=rw&uri=true"
    return make_sessionmaker(make_engine(url, timeout=2.0))


def test_an_outage_fails_every_waiting_request_with_503(
    client: Any, sdk: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = _gateway(client)
    monkeypatch.setattr(gateway, "writes", GroupCommit(_unreachable_sessionmaker(client, tmp_path)))

    async def send(http: httpx.AsyncClient) -> list[httpx.Response]:
        posts = [http.post("/v1/scores", json=_score(), headers=sdk) for _ in range(4)]
        posts.append(
            http.post(
                "/v1/traces",
                content=_traces_body(),
                headers={**sdk, "Content-Type": "application/json"},
            )
        )
        return await asyncio.gather(*posts)

    answers = _in_loop(client, send)
    assert [a.status_code for a in answers] == [503] * 5
    for answer in answers:
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["error"]["code"] == "service_unavailable"
    monkeypatch.undo()  # the database is back
    assert _count(client, Score, sdk["X-Agentmark-App-Id"]) == 0
    assert client.post("/v1/scores", json=_score(), headers=sdk).status_code == 201


async def _queued(writes: GroupCommit, count: int) -> None:
    """Returns once ``count`` requests wait in the queue (at most 10 s)."""
    for _ in range(1000):
        if writes.waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{writes.waiting} requests queued, not {count}")


class _Held:
    """A row writer that holds the writer's transaction until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, session: AsyncSession, batches: Any) -> None:
        self.entered.set()
        await self.release.wait()


def test_a_full_queue_answers_503_with_retry_after(client: Any, sdk: dict[str, str]) -> None:
    writes = _gateway(client).writes
    writes.max_waiting_requests = 2

    async def send(http: httpx.AsyncClient) -> tuple[list[int], httpx.Response]:
        held = _Held()
        holding = asyncio.create_task(writes.write(held, None, 1))
        await held.entered.wait()
        waiting = [
            asyncio.create_task(http.post("/v1/scores", json=_score(), headers=sdk))
            for _ in range(2)
        ]
        await _queued(writes, 2)
        refused = await http.post("/v1/scores", json=_score(), headers=sdk)
        held.release.set()
        await holding
        return [(await w).status_code for w in waiting], refused

    stored, refused = _in_loop(client, send)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "service_unavailable"
    assert stored == [201, 201]
    assert _count(client, Score, sdk["X-Agentmark-App-Id"]) == 2


def test_stopping_the_gateway_stores_and_answers_what_waits(
    client: Any, sdk: dict[str, str], settings: Any
) -> None:
    """A second gateway process on the same database stops while requests wait."""
    app_id = sdk["X-Agentmark-App-Id"]
    item = ScoreCreate.model_validate(_score())

    async def scenario() -> tuple[list[Any], BaseException | None]:
        gateway = Gateway.build(settings)
        await gateway.start()
        held = _Held()
        holding = asyncio.create_task(gateway.writes.write(held, None, 1))
        await held.entered.wait()
        waiting = [
            asyncio.create_task(scores.write_scores(gateway.writes, app_id=app_id, scores=[item]))
            for _ in range(3)
        ]
        await _queued(gateway.writes, 3)
        stopping = asyncio.create_task(gateway.stop())
        await asyncio.sleep(0.05)
        late: BaseException | None = None
        try:
            await scores.write_scores(gateway.writes, app_id=app_id, scores=[item])
        except ServiceUnavailable as exc:
            late = exc
        held.release.set()
        await stopping
        await holding
        return await asyncio.gather(*waiting, return_exceptions=True), late

    answered, late = client.portal.call(scenario)
    assert [len(rows) for rows in answered] == [1, 1, 1]
    assert isinstance(late, ServiceUnavailable)
    assert _count(client, Score, app_id) == 3


def test_a_writer_that_cannot_finish_in_time_leaves_nobody_waiting(
    client: Any, sdk: dict[str, str]
) -> None:
    item = ScoreCreate.model_validate(_score())
    app_id = sdk["X-Agentmark-App-Id"]

    async def scenario() -> list[Any]:
        writes = GroupCommit(_gateway(client).sessionmaker)
        held = _Held()  # never released: a database that hangs
        holding = asyncio.create_task(writes.write(held, None, 1))
        await held.entered.wait()
        waiting = [
            asyncio.create_task(scores.write_scores(writes, app_id=app_id, scores=[item]))
            for _ in range(2)
        ]
        await _queued(writes, 2)
        await writes.close(within=0.2)
        return await asyncio.gather(holding, *waiting, return_exceptions=True)

    outcomes = client.portal.call(scenario)
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes), outcomes
    assert _count(client, Score, app_id) == 0
