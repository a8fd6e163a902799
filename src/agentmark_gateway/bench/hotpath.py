"""The hot path's CPU per request, in process: a setting's cost to rows (b), (f401), (f403).

``python -m agentmark_gateway.bench.hotpath`` builds the gateway twice on one
SQLite database, usage counting on and off (``AGENTMARK_USAGE_COUNTING``), and
calls each app straight through ASGI, no HTTP: the same prepared requests of
rows (b) (a cached template read), (f401) (a made-up key) and (f403) (a key
without ``template.read``), in batches, the two apps taking turns, for several
rounds. CPU time of this process per request, the two batches of a round compared
(``--control`` runs both apps with counting off: the same table for no difference), is
steadier than a rate on a shared machine, and without the HTTP server's own cost
(about two thirds of (b) over a socket) the share a setting adds comes out
larger here than in ``scripts/bench``: a bound from above.

The same rows also show what a refusal costs next to an admitted read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import Message

from agentmark_gateway.app import create_app
from agentmark_gateway.bench import seed
from agentmark_gateway.bench.workload import TEMPLATE_PATH, template_ast
from agentmark_gateway.settings import Settings

ROWS = ("b", "f401", "f403")
EXPECTED = {"b": 200, "f401": 401, "f403": 403}
Call = Callable[[], Awaitable[int]]


def _caller(
    app: FastAPI, method: str, path: str, query: bytes, headers: dict[str, str], body: bytes = b""
) -> Call:
    """One request, sent again and again: returns the answer's status."""
    raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Message:
        return message

    async def call() -> int:
        status = 0

        async def send(sent: Message) -> None:
            nonlocal status
            if sent["type"] == "http.response.start":
                status = sent["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": list(raw_headers),
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 9418),
        }
        await app(scope, receive, send)
        return status

    return call


async def _batch(call: Call, requests: int, expected: int) -> float:
    """CPU µs per request over ``requests`` calls."""
    started = time.process_time()
    for _ in range(requests):
        status = await call()
        if status != expected:
            raise RuntimeError(f"expected {expected}, got {status}")
    return (time.process_time() - started) * 1e6 / requests


def measure(
    rounds: int, requests: int, *, control: bool = False
) -> dict[tuple[str, bool], list[float]]:
    with tempfile.TemporaryDirectory(prefix="agw-hotpath-") as folder:
        url = f"sqlite:///{Path(folder) / 'gateway.db'}"
        pepper = secrets.token_urlsafe(32)
        seeded = seed.prepare(url, pepper.encode())  # runs its own event loop
        return asyncio.run(_measure(Path(folder), url, pepper, seeded, rounds, requests, control))


async def _measure(
    folder: Path,
    url: str,
    pepper: str,
    seeded: seed.Seeded,
    rounds: int,
    requests: int,
    control: bool,
) -> dict[tuple[str, bool], list[float]]:
    samples: dict[tuple[str, bool], list[float]] = {
        (row, counting): [] for row in ROWS for counting in (True, False)
    }
    async with AsyncExitStack() as stack:
        calls: dict[tuple[str, bool], Call] = {}
        publish: Call | None = None
        for counting in (True, False):
            settings = Settings(
                data_dir=folder / f"data-{counting}",
                database_url=url,
                key_pepper=pepper,
                usage_counting=counting and not control,
                access_log=False,
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            sdk = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
            query = f"path={TEMPLATE_PATH}".encode()
            keys = {
                "b": seeded.sdk_key,
                "f401": seeded.unknown_key,
                "f403": seeded.no_template_key,
            }
            for row, key in keys.items():
                headers = {**sdk, "Authorization": key}
                calls[(row, counting)] = _caller(app, "GET", "/v1/templates", query, headers)
            if publish is None:  # (b) reads a published template
                admin = {**sdk, "Authorization": seeded.admin_key}
                admin["Content-Type"] = "application/json"
                body = json.dumps(template_ast()).encode()
                publish = _caller(app, "PUT", "/v1/templates", query, admin, body)
        assert publish is not None
        if await publish() not in (200, 201):
            raise RuntimeError("could not publish the template (b) reads")
        for row in ROWS:  # warm every cache, in both apps
            for counting in (True, False):
                await _batch(calls[(row, counting)], requests, EXPECTED[row])
        for round_number in range(rounds):
            order = (True, False) if round_number % 2 == 0 else (False, True)
            for row in ROWS:
                for counting in order:
                    cost = await _batch(calls[(row, counting)], requests, EXPECTED[row])
                    samples[(row, counting)].append(cost)
    return samples


def table(samples: dict[tuple[str, bool], list[float]]) -> str:
    """Medians, and the median of each round's on/off ratio: the two batches of a round
    ran back to back, so a slow stretch of the machine weighs on both."""
    lines = [
        "| row | CPU µs/request, counting off | counting on | on vs off (paired) |",
        "|---|---|---|---|",
    ]
    for row in ROWS:
        off, on = samples[(row, False)], samples[(row, True)]
        paired = statistics.median(a / b for a, b in zip(on, off, strict=True))
        lines.append(
            f"| {row} | {statistics.median(off):.2f} | {statistics.median(on):.2f} | {paired:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m agentmark_gateway.bench.hotpath", description=__doc__
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000, help="per batch")
    parser.add_argument(
        "--control",
        action="store_true",
        help="both apps with counting off: the ratio the bench gives for no difference",
    )
    args = parser.parse_args(argv)
    samples = measure(args.rounds, args.requests, control=args.control)
    print(f"{args.rounds} rounds of {args.requests} requests per row and setting, medians:\n")
    print(table(samples))


if __name__ == "__main__":
    main()
