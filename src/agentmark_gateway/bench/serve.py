"""Serves a bench-only app with the same uvicorn settings as ``agentmark-gateway serve``.

``python -m agentmark_gateway.bench.serve baseline|bench --port P --workers N``.
The options below mirror ``cli/serve.py``; a unit test holds them equal.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from agentmark_gateway.read_timeouts import HeaderTimeoutProtocol
from agentmark_gateway.settings import Settings

FACTORIES = {
    "baseline": "agentmark_gateway.bench.apps:baseline_factory",
    "bench": "agentmark_gateway.bench.apps:bench_factory",
}


def uvicorn_options(settings: Settings, workers: int) -> dict[str, Any]:
    """The keyword arguments ``agentmark-gateway serve`` gives ``uvicorn.run``."""
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": workers,
        "log_level": settings.log_level,
        "http": f"{HeaderTimeoutProtocol.__module__}:{HeaderTimeoutProtocol.__name__}",
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": 20,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=sorted(FACTORIES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings(port=args.port)
    uvicorn.run(FACTORIES[args.target], **uvicorn_options(settings, args.workers))


if __name__ == "__main__":
    main()
