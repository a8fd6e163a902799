"""``python -m agentmark_gateway.bench``: run the scenarios, print the table, write the files."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from agentmark_gateway.bench import report
from agentmark_gateway.bench.run import SCENARIOS, Options, run
from agentmark_gateway.bench.seed import DEFAULT_PG_URL
from agentmark_gateway.cli.http_server import SERVERS
from agentmark_gateway.settings import Settings


def _names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m agentmark_gateway.bench",
        description="Benchmark the gateway against a bare ASGI app on this machine.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario, 1 s warm-up")
    parser.add_argument("--workers", type=int, default=1, help="server workers for every run")
    parser.add_argument(
        "--scaling-workers", type=int, default=2, help="workers of the scaling run of (b)"
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=None,
        help="HTTP server of every run (default: AGENTMARK_SERVER, else serve's default)",
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--ingest-connections", type=int, default=8, help="concurrent trace posts in (e)"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_PG_URL,
        help="server for (e) on PostgreSQL; a fresh database is created and dropped",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip (e) on PostgreSQL")
    parser.add_argument(
        "--only",
        type=_names,
        default=frozenset(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--profile",
        type=_names,
        default=frozenset(),
        help="rows to rerun under py-spy, e.g. b,f401 (needs py-spy)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder")
    parser.add_argument(
        "--update-docs",
        type=Path,
        nargs="?",
        const=Path("docs/performance.md"),
        default=None,
        help="also put the table into this file (default docs/performance.md)",
    )
    args = parser.parse_args(argv)
    unknown = args.only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    options = Options(
        seconds=3.0 if args.quick else args.duration,
        warmup=1.0 if args.quick else args.warmup,
        workers=args.workers,
        server=args.server or Settings().server,
        scaling_workers=args.scaling_workers,
        connections=args.connections,
        threads=args.threads,
        ingest_connections=args.ingest_connections,
        postgres_url=None if args.no_postgres else args.postgres_url,
        scenarios=args.only,
        profile=args.profile,
        out=args.out,
        docs=args.update_docs,
        command=shlex.join(["python", "-m", "agentmark_gateway.bench", *argv]),
    )
    return options


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    result = run(options)
    md_path, json_path = report.write(result, options.out)
    print(report.markdown(result))
    print(f"written: {md_path} and {json_path}", file=sys.stderr)
    if options.docs is not None:
        report.update_docs(result, options.docs)
        print(f"updated: {options.docs}", file=sys.stderr)
