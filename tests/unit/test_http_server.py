"""The two servers ``serve`` runs the app under: their options carry the same rules."""

from __future__ import annotations

import logging
import multiprocessing
import os

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from agentmark_gateway.cli import http_server
from agentmark_gateway.cli import serve as serve_command
from agentmark_gateway.cli.parent import MASTER_PID_VARIABLE
from agentmark_gateway.read_timeouts import HeaderTimeoutProtocol
from agentmark_gateway.settings import Settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """The settings' variables as a fresh shell has them, restored after.

    Restored whole: ``serve`` writes the workers' variables (host, port, server,
    master pid) straight into ``os.environ``, which would reach later tests.
    """
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AGENTMARK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTMARK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGENTMARK_KEY_PEPPER", "test-pepper")
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


def test_access_log_is_on_by_default_and_false_turns_it_off_for_both_servers(clean_env):
    on = Settings()
    assert on.access_log is True
    assert http_server.uvicorn_options(on, 1)["access_log"] is True
    assert http_server.granian_options(on, 1)["log_access"] is True

    clean_env.setenv("AGENTMARK_ACCESS_LOG", "false")
    off = Settings()
    assert off.access_log is False
    assert http_server.uvicorn_options(off, 1)["access_log"] is False
    assert http_server.granian_options(off, 1)["log_access"] is False


def test_access_lines_follow_the_log_level_under_both_servers(clean_env):
    # uvicorn hides its info-level access lines above info; granian is told the same.
    quiet = http_server.granian_options(Settings(log_level="warning"), 1)
    assert quiet["log_dictconfig"]["loggers"]["granian.access"]["level"] == "WARNING"
    loud = http_server.granian_options(Settings(log_level="info"), 1)
    assert loud["log_dictconfig"]["loggers"]["granian.access"]["level"] == "INFO"
    assert http_server.uvicorn_options(Settings(log_level="warning"), 1)["log_level"] == "warning"


def test_uvicorn_leaves_forwarded_headers_to_the_app_sends_no_server_header_and_times_headers(
    clean_env,
):
    options = http_server.uvicorn_options(Settings(), 2)
    assert options["proxy_headers"] is False
    assert options["server_header"] is False
    assert options["http"].endswith(f":{HeaderTimeoutProtocol.__name__}")
    assert options["timeout_graceful_shutdown"] == http_server.GRACEFUL_SHUTDOWN_SECONDS
    assert options["workers"] == 2


def test_granian_has_the_header_deadline_of_the_setting_and_the_same_graceful_bound(clean_env):
    options = http_server.granian_options(Settings(read_timeout_seconds=2.5), 2)
    assert options["http1_settings"].header_read_timeout == 2500
    assert options["workers_kill_timeout"] == http_server.GRACEFUL_SHUTDOWN_SECONDS
    assert options["workers"] == 2
    # granian reads no X-Forwarded-* unless wrapped for it: the app reads them itself.
    assert not [name for name in options if "proxy" in name or "forward" in name]


class _FakeGranian:
    started: list[tuple[str, dict]] = []

    def __init__(self, target: str, **options: object) -> None:
        self.target, self.options = target, options

    def serve(self) -> None:
        self.started.append((self.target, self.options))


def test_granian_workers_watch_their_master_even_when_alone(clean_env):
    import granian.server

    clean_env.setattr(granian.server, "Server", _FakeGranian)
    methods: list[str] = []
    clean_env.setattr(
        multiprocessing, "set_start_method", lambda method, force: methods.append(method)
    )

    http_server.run("some.module:factory", Settings(server="granian"), 1)
    # granian serves from a spawned worker even with one: it must end with this process.
    assert os.environ[MASTER_PID_VARIABLE] == str(os.getpid())
    assert os.environ["AGENTMARK_SERVER"] == "granian"
    assert methods == ["spawn"]  # fresh interpreters, found as workers like uvicorn's
    assert _FakeGranian.started[-1][0] == "some.module:factory"


def test_uvicorn_alone_serves_in_the_master_and_watches_nothing(clean_env):
    import uvicorn

    seen: dict = {}
    clean_env.setattr(uvicorn, "run", lambda target, **options: seen.update(options))
    clean_env.setenv(MASTER_PID_VARIABLE, "1")
    http_server.run("some.module:factory", Settings(server="uvicorn"), 1)
    assert MASTER_PID_VARIABLE not in os.environ
    assert seen == http_server.uvicorn_options(Settings(server="uvicorn"), 1)


def test_the_server_option_of_serve_overrides_the_setting(clean_env):
    chosen: list[str] = []
    clean_env.setattr(
        http_server, "run", lambda target, settings, workers: chosen.append(settings.server)
    )
    clean_env.setenv("AGENTMARK_SERVER", "granian")
    serve_command.serve(host=None, port=9999, workers=1, server="uvicorn")
    serve_command.serve(host=None, port=9999, workers=1, server=None)
    assert chosen == ["uvicorn", "granian"]


def test_under_granian_the_lifespan_logs_its_start_and_end_as_uvicorn_does(settings, caplog):
    app = http_server.log_lifespan(create_app(settings))
    with caplog.at_level(logging.INFO, logger=http_server.LIFESPAN_LOGGER):
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            started = [r.getMessage() for r in caplog.records]
    ended = [r.getMessage() for r in caplog.records]
    assert started == ["Application startup complete."]
    assert ended == ["Application startup complete.", "Application shutdown complete."]
