"""The two HTTP servers ``agentmark-gateway serve`` can run the app under.

uvicorn (Python, httptools parser; the default) and granian (Rust, hyper)
serve the same ASGI app with the same rules: requests in flight finish after
SIGTERM, within ``GRACEFUL_SHUTDOWN_SECONDS``; a header deadline
(``AGENTMARK_READ_TIMEOUT_SECONDS``); X-Forwarded-* left to the app, which
believes them from trusted proxies only; workers that end with their master;
an access log that ``AGENTMARK_ACCESS_LOG=false`` turns off; the lifespan's
start and end logged in the same words. Where granian falls short (no 408
before closing, a Server header it always sends) is in docs/deploy.md. The
bench launcher uses ``run`` too, so what it measures is what operators run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from agentmark_gateway.cli.parent import MASTER_PID_VARIABLE
from agentmark_gateway.observability import logs, metrics
from agentmark_gateway.settings import Settings

__all__ = [
    "GRACEFUL_SHUTDOWN_SECONDS",
    "SERVERS",
    "granian_options",
    "log_lifespan",
    "run",
    "uvicorn_options",
]

SERVERS = ("granian", "uvicorn")

# After SIGTERM, how long requests in flight may take before they are cut off
# (a supervisor's stop timeout should be longer: deploy/systemd/ uses 30 s).
GRACEFUL_SHUTDOWN_SECONDS = 20

# granian configures only its own loggers; this one carries the lifespan lines.
LIFESPAN_LOGGER = "agentmark_gateway.server"


def uvicorn_options(settings: Settings, workers: int) -> dict[str, Any]:
    """The keyword arguments ``uvicorn.run`` gets, besides the target."""
    from agentmark_gateway.read_timeouts import HeaderTimeoutProtocol

    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers,
        "log_level": settings.log_level,
        # One handler for every line: AGENTMARK_LOG_FORMAT, request ids, secrets masked.
        "log_config": logs.dict_config(settings),
        "access_log": settings.access_log,
        # Headers have a deadline; uvicorn's own protocol waits for them forever.
        "http": f"{HeaderTimeoutProtocol.__module__}:{HeaderTimeoutProtocol.__name__}",
        # X-Forwarded-For and X-Forwarded-Proto are read by the app, from the
        # trusted proxies only (netaccess, forwarded): one rule for both servers.
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


def granian_options(settings: Settings, workers: int) -> dict[str, Any]:
    """The keyword arguments granian's ``Server`` gets, besides the target."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    # uvicorn's "trace" is granian's "debug"; the other names are shared.
    level = {"trace": "debug"}.get(settings.log_level.lower(), settings.log_level.lower())
    # The same handler as under uvicorn; as there, access lines and lifespan lines
    # (LIFESPAN_LOGGER, propagating to it) are info: a log level above that hides them.
    log_config = logs.dict_config(settings)
    return {
        "factory": True,
        "address": settings.host,
        "port": settings.port,
        "workers": workers,
        "interface": Interfaces.ASGI,
        # HTTP/1.1 only, as with uvicorn: the deadline below is an HTTP/1 setting.
        "http": HTTPModes.http1,
        "websockets": False,
        # hyper's own header deadline: past it the connection is closed (no 408).
        "http1_settings": HTTP1Settings(
            header_read_timeout=max(1, round(settings.read_timeout_seconds * 1000))
        ),
        "log_level": LogLevels(level),
        "log_dictconfig": log_config,
        "log_access": settings.access_log,
        # granian has no graceful timeout of its own: a worker still draining
        # after this is killed (its requests in flight cut off, as uvicorn's are).
        "workers_kill_timeout": GRACEFUL_SHUTDOWN_SECONDS,
    }


def log_lifespan(app: FastAPI) -> FastAPI:
    """Under granian: log the lifespan's end as uvicorn does ("Application ... complete.")."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context
    log = logging.getLogger(LIFESPAN_LOGGER)

    @asynccontextmanager
    async def logged(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            log.info("Application startup complete.")
            yield state
        log.info("Application shutdown complete.")

    app.router.lifespan_context = logged
    return app


def run(target: str, settings: Settings, workers: int) -> None:
    """Serve the app ``target`` ("module:factory") under ``settings.server``.

    Each worker builds its own settings from the environment: the server chosen
    and the master's pid (for ``parent.exit_with_master``) are passed that way.
    """
    os.environ["AGENTMARK_SERVER"] = settings.server
    # Several workers add their metrics up through a shared folder (when metrics are on).
    metrics.prepare_workers(settings, workers)
    # uvicorn serves in this process when alone; granian always spawns workers.
    if workers > 1 or settings.server == "granian":
        os.environ[MASTER_PID_VARIABLE] = str(os.getpid())
    else:
        os.environ.pop(MASTER_PID_VARIABLE, None)  # this process serves; none to watch
    if settings.server == "granian":
        from granian.server import Server

        # Fresh interpreters, as uvicorn's workers are: nothing of this process
        # (its engine, its threads) is inherited, and they are found as such.
        multiprocessing.set_start_method("spawn", force=True)
        Server(target, **granian_options(settings, workers)).serve()
    else:
        import uvicorn

        uvicorn.run(target, **uvicorn_options(settings, workers))
