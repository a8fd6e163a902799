"""Real gateway processes with handles the resilience tests need: pid, memory, signals.

``tests.servers.gateway_process`` starts one and hides the process; these tests
also read each server's memory from /proc and send it SIGTERM themselves, so
they keep the ``Popen``. Several start at once (each takes seconds to import).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agentmark_gateway.db.engine import make_engine, make_sessionmaker
from agentmark_gateway.users.service import create_user
from tests.conftest import PEPPER
from tests.servers import free_port

OWNER_EMAIL = "ops@example.com"
OWNER_PASSWORD = "a long password"


class GatewayProcess:
    """``python -m agentmark_gateway serve`` on a free port of 127.0.0.1."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        run_as: Sequence[str] = (),
    ) -> None:
        """``run_as``: a command prefix the server runs under (e.g. ``setpriv ...``)."""
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / f"server-{self.port}.log"
        full_env = {
            **os.environ,
            "AGENTMARK_DATABASE_URL": database_url,
            "AGENTMARK_DATA_DIR": str(data_dir),
            "AGENTMARK_KEY_PEPPER": PEPPER,
            "AGENTMARK_LOG_LEVEL": "warning",
            **(env or {}),
        }
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *run_as,
                    sys.executable,
                    "-m",
                    "agentmark_gateway",
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start:\n{self.log()}")
            time.sleep(0.1)

    def rss_kib(self) -> int:
        """Resident memory of the server process (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def sigterm(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def gateways(
    database_url: str, data_dir: Path, count: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[list[GatewayProcess]]:
    """``count`` gateways on one database, started together; stopped after."""
    with ExitStack() as stack:
        started = []
        for index in range(count):
            process = GatewayProcess(database_url, data_dir / f"gw{index}", env)
            stack.callback(process.stop)
            started.append(process)
        for process in started:
            process.wait_ready()
        yield started


def add_owner(database_url: str) -> None:
    """The deployment's owner, made straight in the database as the CLI would."""

    async def work() -> None:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                await create_user(session, email=OWNER_EMAIL, role="owner", password=OWNER_PASSWORD)
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(work())


@dataclass
class Admin:
    """The owner signed in through one gateway: apps and keys through the real API."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def sign_in(cls, base: str) -> Admin:
        response = httpx.post(
            f"{base}/v1/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        )
        response.raise_for_status()
        return cls(base, {"Authorization": f"Bearer {response.json()['data']['token']}"})

    def create_app(self) -> str:
        response = httpx.post(
            f"{self.base}/v1/apps",
            json={"name": f"app-{uuid.uuid4().hex[:8]}"},
            headers=self.headers,
        )
        response.raise_for_status()
        return str(response.json()["data"]["id"])

    def create_key(self, app_id: str, **body: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/v1/api-keys",
            json={"name": f"key-{uuid.uuid4().hex[:8]}", **body},
            headers={**self.headers, "X-Agentmark-App-Id": app_id},
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def edit_key(self, key_id: str, **body: Any) -> None:
        response = httpx.patch(f"{self.base}/v1/api-keys/{key_id}", json=body, headers=self.headers)
        assert response.status_code == 200, response.text

    def delete_key(self, key_id: str) -> None:
        response = httpx.delete(f"{self.base}/v1/api-keys/{key_id}", headers=self.headers)
        assert response.status_code == 204, response.text

    def roll_key(self, key_id: str, grace_seconds: int) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/v1/api-keys/{key_id}/roll",
            json={"grace_seconds": grace_seconds},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


def key_headers(key: Mapping[str, Any]) -> dict[str, str]:
    return {"Authorization": str(key["plaintext_key"]), "X-Agentmark-App-Id": str(key["app_id"])}
