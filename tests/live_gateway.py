"""One gateway for a whole test module, on its own database, for tests that drive
real clients (Node scripts, other interpreters) over a real socket.

Starting the clients costs far more than the requests they make, so a module sets
up one app and its keys once and runs its scenarios against it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER, Admin, add_user, database_copy
from tests.servers import StatusRecorder, threaded_gateway

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def unavailable(reason: str) -> None:
    """Skips outside CI, saying why; in CI a missing client is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def shared_path(*parts: str) -> Path:
    """A file of the shared folder that sits beside the checkout (``../shared``)."""
    path = REPO.parent.joinpath("shared", *parts)
    if not path.exists():
        unavailable(f"{path} is missing (the shared folder beside the checkout)")
    return path


def node() -> str:
    found = shutil.which("node")
    if found is None:
        unavailable("no node on PATH (Node 20 runs the TypeScript clients)")
    assert found is not None
    return found


@dataclass
class NodeRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        """The JSON object the script printed last."""
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_node(script: Path, *args: str, env: dict[str, str], timeout: float = 60) -> NodeRun:
    done = subprocess.run(
        [node(), str(script), *args],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return NodeRun(done.returncode, done.stdout, done.stderr)


@dataclass
class LiveGateway:
    base: str
    recorder: StatusRecorder
    client: TestClient  # a second app on the same database, for setup and reads
    admin: Admin

    def publish(self, headers: dict[str, str], path: str, fixture: Path) -> None:
        body = fixture.read_bytes()
        response = self.client.put(
            "/v1/templates", params={"path": path}, content=body, headers=headers
        )
        assert response.status_code in (200, 201), response.text

    def delete_key(self, key: dict[str, Any]) -> None:
        response = self.client.delete(
            f"/v1/api-keys/{key['id']}",
            headers={**self.admin.headers, "X-Agentmark-App-Id": key["app_id"]},
        )
        assert response.status_code == 204, response.text


@contextmanager
def live_gateway(factory: pytest.TempPathFactory, template: str) -> Iterator[LiveGateway]:
    """A served gateway and a signed-in owner, on a database of their own."""
    with database_copy(template, factory.mktemp("clients-db"), "agw_clients") as url:
        settings = Settings(
            data_dir=factory.mktemp("clients-data"), database_url=url, key_pepper=PEPPER
        )
        with TestClient(create_app(settings)) as client:
            admin = Admin(client, add_user(client, "owner@example.com", "owner"))
            with threaded_gateway(create_app(settings)) as (base, recorder):
                yield LiveGateway(base, recorder, client, admin)
