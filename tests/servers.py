"""Real gateway processes for tests that need more than one, or a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gateway_process(
    database_url: str, data_dir: Path, *, pepper: str, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """``agentmark-gateway serve`` on a free port; yields its base URL, stops it after."""
    port = free_port()
    env = {
        **os.environ,
        "AGENTMARK_DATABASE_URL": database_url,
        "AGENTMARK_DATA_DIR": str(data_dir),
        "AGENTMARK_KEY_PEPPER": pepper,
        "AGENTMARK_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    log = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agentmark_gateway", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class StatusRecorder:
    """An ASGI wrapper noting the status of every request the gateway answers: the
    clients themselves often report only success or failure."""

    app: Any
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting)

    def statuses(self, method: str, path: str) -> list[int]:
        return [s for m, p, s in self.seen if (m, p) == (method, path)]


@contextmanager
def threaded_gateway(app: Any) -> Iterator[tuple[str, StatusRecorder]]:
    """``app`` served by uvicorn in a thread on a free port, behind a recorder;
    yields the base URL and the recorder."""
    recorder = StatusRecorder(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(recorder, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", recorder
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
