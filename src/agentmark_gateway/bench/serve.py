"""Serves a bench-only app under the same server, with the same settings, as
``agentmark-gateway serve`` (``cli/http_server.run``).

``python -m agentmark_gateway.bench.serve baseline|bench --port P --workers N``;
the server is ``AGENTMARK_SERVER``'s, as for ``serve``.
"""

from __future__ import annotations

import argparse

from agentmark_gateway.cli import http_server
from agentmark_gateway.settings import Settings

FACTORIES = {
    "baseline": "agentmark_gateway.bench.apps:baseline_factory",
    "bench": "agentmark_gateway.bench.apps:bench_factory",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=sorted(FACTORIES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    settings = Settings(port=args.port)
    http_server.run(FACTORIES[args.target], settings, args.workers)


if __name__ == "__main__":
    main()
