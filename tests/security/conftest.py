"""A gateway on a real socket for the hostile-input tests, and helpers to judge answers.

The live gateway runs uvicorn in a thread of this process (as the browser tests
do), on a database of its own copied from the migrated template, SQLite or
PostgreSQL like the rest of the suite. One per module: hostile requests change
nothing, so the modules share nothing but each needs its data once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.settings import Settings
from tests.conftest import PEPPER, Admin, add_user, database_copy
from tests.security.seed import Seeded, seed_app
from tests.servers import free_port

# No answer may take longer than this; a request that does is a hang.
TIMEOUT = 30.0


@dataclass
class LiveGateway:
    base_url: str
    port: int
    app: Seeded
    session_token: str

    @property
    def data_headers(self) -> dict[str, str]:
        return self.app.headers

    @property
    def session_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.session_token}",
            "X-Agentmark-App-Id": self.app.app_id,
        }

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def live(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    root = tmp_path_factory.mktemp("live")
    with database_copy(template_database, root, "agw_security") as database_url:
        settings = Settings(data_dir=root / "data", database_url=database_url, key_pepper=PEPPER)
        # Seeded in-process first: the served app must own its event loop (and pool).
        with TestClient(create_app(settings)) as client:
            admin = Admin(client, add_user(client, "owner@example.com", "owner"))
            app_id = admin.create_app("hostile")
            key = admin.create_key(app_id, role="full-access")["plaintext_key"]
            seeded = seed_app(client, app_id, key, "alpha")
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="live-gateway", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the live gateway did not start")
            time.sleep(0.02)
        try:
            yield LiveGateway(
                base_url=f"http://127.0.0.1:{port}",
                port=port,
                app=seeded,
                session_token=admin.token,
            )
        finally:
            server.should_exit = True
            thread.join(timeout=15)
