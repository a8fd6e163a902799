"""Two server setups side by side, interleaved: which is faster on this machine.

``python -m agentmark_gateway.bench.compare uvicorn granian`` (or
``uvicorn uvicorn:no-access-log`` for the access log's cost, or
``uvicorn:no-usage uvicorn --rows b,f401,f403`` for the cost of counting usage per
key). A setup is a server name, optionally with flags after colons
(``:no-access-log``, ``:no-usage``). Every server is up at once
(the bare ASGI app and the gateway, for each setup, each on its own SQLite
database); then each row runs on each setup in turn, in short slices, for
several rounds, the order flipped every round. Other work on a shared machine
then weighs on both setups alike, where two bench runs minutes apart each meet
a different load. Medians of the rounds are printed as a table.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agentmark_gateway.bench import loadgen, seed, wrk
from agentmark_gateway.bench.servers import Server, bench_command, gateway_command
from agentmark_gateway.bench.workload import TEMPLATE_PATH, TraceBodies, score_body, template_ast
from agentmark_gateway.cli.http_server import SERVERS

ROWS = ("a", "b", "f401", "f403", "d", "e")
NO_ACCESS_LOG = "no-access-log"
NO_USAGE = "no-usage"


@dataclass(frozen=True)
class Setup:
    server: str
    access_log: bool = True
    usage_counting: bool = True

    @classmethod
    def parse(cls, text: str) -> Setup:
        server, *flags = text.split(":")
        if server not in SERVERS or set(flags) - {NO_ACCESS_LOG, NO_USAGE}:
            raise ValueError(
                f"not a setup: {text!r} (SERVER, then :{NO_ACCESS_LOG} and/or :{NO_USAGE})"
            )
        return cls(
            server, access_log=NO_ACCESS_LOG not in flags, usage_counting=NO_USAGE not in flags
        )

    @property
    def name(self) -> str:
        flags = [] if self.access_log else [NO_ACCESS_LOG]
        flags += [] if self.usage_counting else [NO_USAGE]
        return ":".join([self.server, *flags])


@dataclass
class Samples:
    """One row on one setup: (rate, server CPU µs per request, p99 ms) per round."""

    rounds: list[tuple[float, float, float]] = field(default_factory=list)

    def median(self, index: int) -> float:
        return statistics.median(sample[index] for sample in self.rounds)


def table(setups: list[Setup], rows: list[str], samples: dict[tuple[str, str], Samples]) -> str:
    """Medians per row and setup; the second setup's rate and CPU as shares of the first's."""
    first, second = setups[0].name, setups[1].name
    lines = [
        f"| row | setup | req/s (e: spans/s) | server CPU µs/req | p99 ms "
        f"| req/s vs {first} | CPU vs {first} |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = samples[(row, first)]
        for setup in setups:
            got = samples[(row, setup.name)]
            shares = ["", ""]
            if setup.name == second:
                shares = [
                    f"{got.median(0) / base.median(0):.2f}",
                    f"{got.median(1) / base.median(1):.2f}",
                ]
            lines.append(
                f"| {row} | {setup.name} | {got.median(0):,.0f} | {got.median(1):,.0f} "
                f"| {got.median(2):.1f} | {shares[0]} | {shares[1]} |"
            )
    return "\n".join(lines)


class Comparison:
    def __init__(self, setups: list[Setup], workers: int, workdir: Path) -> None:
        self.setups = setups
        self.workdir = workdir
        self.pepper = secrets.token_urlsafe(32)
        self.seeded: dict[str, seed.Seeded] = {}
        self.servers: dict[tuple[str, str], Server] = {}
        for setup in setups:
            folder = workdir / setup.name.replace(":", "-")
            url = f"sqlite:///{folder / 'gateway.db'}"
            self.seeded[setup.name] = seed.prepare(url, self.pepper.encode())
            env = {
                "AGENTMARK_DATA_DIR": str(folder),
                "AGENTMARK_KEY_PEPPER": self.pepper,
                "AGENTMARK_DATABASE_URL": url,
                "AGENTMARK_SERVER": setup.server,
                "AGENTMARK_ACCESS_LOG": str(setup.access_log).lower(),
                "AGENTMARK_USAGE_COUNTING": str(setup.usage_counting).lower(),
            }
            for app, command in (("a", bench_command("baseline")), ("g", gateway_command())):
                log = folder / f"{app}.log"
                self.servers[(app, setup.name)] = Server(
                    f"{app}-{setup.name}", command, env, log, workers
                )

    def start(self) -> None:
        for server in self.servers.values():
            server.start()
        for setup in self.setups:
            seeded = self.seeded[setup.name]
            answer = httpx.put(
                f"{self.servers[('g', setup.name)].base_url}/v1/templates",
                params={"path": TEMPLATE_PATH},
                json=template_ast(),
                headers={"Authorization": seeded.admin_key, "X-Agentmark-App-Id": seeded.app_id},
                timeout=30,
            )
            answer.raise_for_status()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def measure(self, row: str, setup: Setup, seconds: float) -> tuple[float, float, float]:
        seeded = self.seeded[setup.name]
        sdk = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
        server = self.servers[("a" if row == "a" else "g", setup.name)]
        cpu_before = server.cpu_seconds()
        if row == "e":
            ingest = loadgen.ingest(
                server.base_url, sdk, seconds=seconds, connections=8, bodies=TraceBodies()
            )
            cpu = server.cpu_seconds() - cpu_before
            p99 = loadgen.percentile(ingest.latencies_ms, 0.99)
            return ingest.span_rate, cpu * 1e6 / max(ingest.requests, 1), p99
        read = f"/v1/templates?path={TEMPLATE_PATH}"
        refusal = {"f401": 401, "f403": 403}.get(row)
        request = {
            "a": wrk.Request("GET", "/"),
            "b": wrk.Request("GET", read, sdk),
            "f401": wrk.Request("GET", read, {**sdk, "Authorization": seeded.unknown_key}),
            "f403": wrk.Request("GET", read, {**sdk, "Authorization": seeded.no_template_key}),
            "d": wrk.Request(
                "POST", "/v1/scores", {**sdk, "Content-Type": "application/json"}, score_body()
            ),
        }[row]
        result = wrk.run(
            server.base_url,
            request,
            seconds=seconds,
            connections=32,
            threads=1,
            workdir=self.workdir / "wrk" / row,
        )
        failed = {
            status: n
            for status, n in result.statuses.items()
            if (status != refusal if refusal else status >= 300)
        }
        if failed:
            raise RuntimeError(f"({row}) on {setup.name} answered {failed}")
        cpu = server.cpu_seconds() - cpu_before
        return result.rate, cpu * 1e6 / max(result.requests, 1), result.p99_ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m agentmark_gateway.bench.compare", description=__doc__
    )
    parser.add_argument("first", type=Setup.parse, help="e.g. uvicorn")
    parser.add_argument("second", type=Setup.parse, help="e.g. granian, uvicorn:no-access-log")
    parser.add_argument("--workers", type=int, default=1, help="workers of every server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="per row, setup and round")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"subset of {','.join(ROWS)}")
    args = parser.parse_args(argv)
    setups = [args.first, args.second]
    if setups[0].name == setups[1].name:
        parser.error("two different setups, please")
    rows = [row for row in args.rows.split(",") if row]
    if set(rows) - set(ROWS):
        parser.error(f"rows are among {','.join(ROWS)}")
    samples = {(row, setup.name): Samples() for row in rows for setup in setups}
    with tempfile.TemporaryDirectory(prefix="agw-compare-") as directory:
        comparison = Comparison(setups, args.workers, Path(directory))
        try:
            comparison.start()
            for round_number in range(args.rounds):
                order = setups if round_number % 2 == 0 else setups[::-1]
                for row in rows:
                    for setup in order:
                        sample = comparison.measure(row, setup, args.seconds)
                        samples[(row, setup.name)].rounds.append(sample)
                print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)
        finally:
            comparison.stop()
    print(f"{args.workers} worker(s), {args.rounds} rounds of {args.seconds:g} s, medians:\n")
    print(table(setups, rows, samples))


if __name__ == "__main__":
    main()
