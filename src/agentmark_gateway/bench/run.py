"""The scenarios of issue 5, run side by side: servers up, wrk or the ingest generator, rows."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agentmark_gateway.bench import ceiling, loadgen, seed, wrk
from agentmark_gateway.bench.apps import BENCH_APP_ID_ENV
from agentmark_gateway.bench.profile import Profiler
from agentmark_gateway.bench.report import Report, Row, machine_info, now
from agentmark_gateway.bench.servers import Server, bench_command, gateway_command
from agentmark_gateway.bench.workload import TEMPLATE_PATH, TraceBodies, score_body, template_ast

SCENARIOS = ("a", "b", "c", "d", "e", "f", "half", "scaling")

# Row id (scaling rows share their base row's) -> label and the one status expected
# (None: any 2xx).
ROWS: dict[str, tuple[str, int | None]] = {
    "a": ("bare ASGI, constant JSON", 200),
    "b": ("GET /v1/templates, key + permission", 200),
    "c": ("GET /v1/templates, auth switched off", 200),
    "f401": ("GET /v1/templates, made-up key", 401),
    "f403": ("GET /v1/templates, key lacks template.read", 403),
    "d": ("POST /v1/scores, SQLite", None),
    "d-1": ("POST /v1/scores, one at a time (the SDK's score_sync), SQLite", None),
    "d-postgresql": ("POST /v1/scores, PostgreSQL", None),
    "e-sqlite": ("POST /v1/traces, 100 spans, SQLite", None),
    "e-postgresql": ("POST /v1/traces, 100 spans, PostgreSQL", None),
    "e-ceiling-sqlite": ("(e)'s batches decoded and stored in process, no HTTP, SQLite", None),
    "e-ceiling-postgresql": (
        "(e)'s batches decoded and stored in process, no HTTP, PostgreSQL",
        None,
    ),
}


def _read_template(headers: dict[str, str]) -> wrk.Request:
    return wrk.Request("GET", f"/v1/templates?path={TEMPLATE_PATH}", headers)


@dataclass
class Options:
    seconds: float = 10.0
    warmup: float = 2.0
    workers: int = 1
    server: str = "uvicorn"  # AGENTMARK_SERVER of every server started
    scaling_workers: int = 2
    connections: int = 32
    threads: int = 1
    ingest_connections: int = 8
    postgres_url: str | None = seed.DEFAULT_PG_URL
    scenarios: frozenset[str] = frozenset(SCENARIOS)
    profile: frozenset[str] = frozenset()
    out: Path = Path("bench-results")
    docs: Path | None = None
    command: str = ""
    log: list[str] = field(default_factory=list)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    _say(f"-- starting {server.name} ({server.workers} worker(s))")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Bench:
    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.pepper = secrets.token_urlsafe(32)
        self.report = Report(
            started=now(),
            command=options.command,
            machine=machine_info(),
            settings={
                "seconds": options.seconds,
                "warmup": options.warmup,
                "server": options.server,
                "connections": options.connections,
                "wrk_threads": options.threads,
                "ingest_connections": options.ingest_connections,
                "versions": _versions(),
                "load_average_before": round(os.getloadavg()[0], 2),
            },
        )
        busy = os.getloadavg()[0]
        if busy > 0.5:
            _say(
                f"!! load average is {busy:.1f}: other work shares these CPUs, so the "
                "numbers will be noisy; CPU µs per request is the steadier column"
            )

    # -- servers ------------------------------------------------------------

    def _env(self, name: str, database_url: str | None = None) -> dict[str, str]:
        data_dir = self.workdir / name
        env = {
            "AGENTMARK_DATA_DIR": str(data_dir),
            "AGENTMARK_KEY_PEPPER": self.pepper,
            "AGENTMARK_SERVER": self.options.server,
        }
        if database_url:
            env["AGENTMARK_DATABASE_URL"] = database_url
        return env

    def server(self, name: str, command: list[str], env: dict[str, str], workers: int) -> Server:
        return Server(
            name=name,
            command=command,
            env=env,
            log=self.workdir / "logs" / f"{name}-{workers}w.log",
            workers=workers,
        )

    def _remember_rss(self, server: Server) -> None:
        self.report.rss_after_mib[f"{server.name} ({server.workers}w)"] = server.rss_mib()

    # -- measuring ----------------------------------------------------------

    def _preflight(self, server: Server, request: wrk.Request) -> int:
        answer = httpx.request(
            request.method,
            f"{server.base_url}{request.path}",
            headers=request.headers,
            content=request.body,
            timeout=30,
        )
        return answer.status_code

    def measure(
        self,
        server: Server,
        row: Row,
        request: wrk.Request,
        *,
        mean_delay_ms: float | None = None,
    ) -> Row:
        status = self._preflight(server, request)
        if status in (404, 405) and row.expected_status not in (404, 405):
            row.skipped = f"{request.method} {request.path.split('?')[0]} answers {status}"
            _say(f"   {row.id}: {row.skipped}")
            self.report.rows.append(row)
            return row
        workdir = self.workdir / "wrk" / row.id
        if self.options.warmup > 0:
            wrk.run(
                server.base_url,
                request,
                seconds=self.options.warmup,
                connections=row.connections,
                threads=self.options.threads,
                workdir=workdir,
                mean_delay_ms=mean_delay_ms,
            )
        server.reset_peaks()
        cpu_before = server.cpu_seconds()
        result = wrk.run(
            server.base_url,
            request,
            seconds=self.options.seconds,
            connections=row.connections,
            threads=self.options.threads,
            workdir=workdir,
            mean_delay_ms=mean_delay_ms,
        )
        row.rate, row.p50_ms, row.p99_ms = result.rate, result.p50_ms, result.p99_ms
        row.statuses, row.errors = result.statuses, result.socket_errors
        row.peak_mib = server.peak_mib()
        row.cpu_us = _per_request(server.cpu_seconds() - cpu_before, result.requests)
        self.report.rows.append(row)
        _say(
            f"   {row.id}: {row.rate:,.0f} req/s, p50 {row.p50_ms:.2f} ms, "
            f"p99 {row.p99_ms:.2f} ms, {row.cpu_us or 0:,.0f} µs CPU/req"
        )
        if row.id in self.options.profile:
            self._profile(server, row.id, request, row.connections, mean_delay_ms)
        return row

    def _profile(
        self,
        server: Server,
        row_id: str,
        request: wrk.Request,
        connections: int,
        mean_delay_ms: float | None,
    ) -> None:
        profiler = Profiler(
            server.worker_pids()[0], self.options.out, f"{self.report.started}-{row_id}"
        )
        with profiler.recording(self.options.seconds):
            wrk.run(
                server.base_url,
                request,
                seconds=self.options.seconds,
                connections=connections,
                threads=self.options.threads,
                workdir=self.workdir / "wrk" / f"{row_id}-profile",
                mean_delay_ms=mean_delay_ms,
            )
        _say(f"   {row_id}: stacks in {profiler.raw} and {profiler.summary_path}")

    def ingest(
        self, server: Server, row: Row, headers: dict[str, str], database_url: str, app_id: str
    ) -> Row:
        bodies = TraceBodies()
        probe = httpx.post(
            f"{server.base_url}/v1/traces",
            content=bodies.next(),
            headers={**headers, "Content-Type": "application/json"},
            timeout=30,
        )
        if probe.status_code in (404, 405):
            row.skipped = f"POST /v1/traces answers {probe.status_code}"
            _say(f"   {row.id}: {row.skipped}")
            self.report.rows.append(row)
            return row
        if self.options.warmup > 0:
            loadgen.ingest(
                server.base_url,
                headers,
                seconds=self.options.warmup,
                connections=row.connections,
                bodies=bodies,
            )
        before = seed.count_spans(database_url, app_id)
        server.reset_peaks()
        cpu_before = server.cpu_seconds()
        result = loadgen.ingest(
            server.base_url,
            headers,
            seconds=self.options.seconds,
            connections=row.connections,
            bodies=bodies,
        )
        row.peak_mib = server.peak_mib()
        row.cpu_us = _per_request(server.cpu_seconds() - cpu_before, result.requests)
        stored = seed.count_spans(database_url, app_id) - before
        row.rate, row.spans_rate = result.rate, result.span_rate
        row.p50_ms = loadgen.percentile(result.latencies_ms, 0.50)
        row.p99_ms = loadgen.percentile(result.latencies_ms, 0.99)
        row.statuses, row.errors = result.statuses, result.errors
        row.check_ok = stored == result.acknowledged_spans
        relation = "=" if row.check_ok else "!="
        row.check = f"spans stored {stored:,} {relation} acknowledged {result.acknowledged_spans:,}"
        self.report.rows.append(row)
        _say(f"   {row.id}: {row.spans_rate:,.0f} spans/s, {row.check}")
        return row

    # -- the run ------------------------------------------------------------

    def wants(self, scenario: str) -> bool:
        return scenario in self.options.scenarios

    def run(self) -> Report:
        """(a), (b), (c) and (f) back to back while all three servers are up, then the rest."""
        options = self.options
        workers = options.workers
        seeded: seed.Seeded | None = None
        with contextlib.ExitStack() as servers:
            baseline = gateway = bench = None
            if self.wants("a"):
                baseline = servers.enter_context(
                    running(
                        self.server(
                            "baseline", bench_command("baseline"), self._env("baseline"), workers
                        )
                    )
                )
            if options.scenarios - {"a"}:
                seeded = seed.prepare(self.sqlite_url, self.pepper.encode())
                gateway = servers.enter_context(
                    running(
                        self.server("gateway-sqlite", gateway_command(), self.sqlite_env, workers)
                    )
                )
                self._publish(gateway, seeded)
            if self.wants("c") and seeded is not None:
                bench_env = {**self.sqlite_env, BENCH_APP_ID_ENV: seeded.app_id}
                bench = servers.enter_context(
                    running(
                        self.server("bench-no-auth", bench_command("bench"), bench_env, workers)
                    )
                )
            if baseline is not None:
                self.measure(baseline, self._row("a", workers), wrk.Request("GET", "/"))
            if gateway is not None and seeded is not None:
                self._gateway_rows(gateway, bench, seeded)
                self._remember_rss(gateway)
            if bench is not None:
                self._remember_rss(bench)

        if self.wants("e") and seeded is not None:
            # With the server stopped: the same database, the CPUs to itself.
            self._ceiling("e-ceiling-sqlite", self.sqlite_url, seeded.app_id)
        if self.wants("scaling") and seeded is not None and options.scaling_workers != workers:
            self._scaling_rows(seeded)
        if (self.wants("d") or self.wants("e")) and options.postgres_url:
            self._postgres_ingest(options.postgres_url, workers)
            if self.wants("e") and self.wants("scaling") and options.scaling_workers != workers:
                # Ingest is CPU-bound in the worker; PostgreSQL takes writes from
                # several processes at once, so this is the row that shows it.
                self._postgres_ingest(options.postgres_url, options.scaling_workers)
        self.report.settings["load_average_after"] = round(os.getloadavg()[0], 2)
        return self.report

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.workdir / 'sqlite' / 'gateway.db'}"

    @property
    def sqlite_env(self) -> dict[str, str]:
        return self._env("sqlite", self.sqlite_url)

    def _row(self, row_id: str, workers: int, connections: int | None = None) -> Row:
        base = row_id.removesuffix(f"-{workers}w")
        label, expected = ROWS[base.split("-")[0] if base.startswith(("a-", "b-")) else base]
        return Row(
            row_id,
            label,
            workers,
            connections or self.options.connections,
            expected_status=expected,
        )

    def _gateway_rows(self, gateway: Server, bench: Server | None, seeded: seed.Seeded) -> None:
        workers = self.options.workers
        sdk = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
        read_template = _read_template(sdk)
        peak = None
        if self.wants("b") or self.wants("half"):
            peak = self.measure(gateway, self._row("b", workers), read_template)
        if bench is not None:
            # The same request, headers included: only the key check differs.
            self.measure(bench, self._row("c", workers), read_template)
        if self.wants("f"):
            for row_id, key in (("f401", seeded.unknown_key), ("f403", seeded.no_template_key)):
                headers = {**sdk, "Authorization": key}
                self.measure(
                    gateway,
                    self._row(row_id, workers),
                    wrk.Request("GET", read_template.path, headers),
                )
        if self.wants("half") and peak is not None and not peak.skipped and peak.rate:
            self._half_peak(gateway, peak, read_template)
        if self.wants("d"):
            score = wrk.Request(
                "POST", "/v1/scores", {**sdk, "Content-Type": "application/json"}, score_body()
            )
            self.measure(gateway, self._row("d", workers), score)
            # One client waiting for each answer before the next: the latency an
            # evaluation run's score_sync calls see when nothing else is writing.
            self.measure(gateway, self._row("d-1", workers, 1), score)
        if self.wants("e"):
            row = self._row("e-sqlite", workers, self.options.ingest_connections)
            self.ingest(gateway, row, sdk, self.sqlite_url, seeded.app_id)

    def _scaling_rows(self, seeded: seed.Seeded) -> None:
        many = self.options.scaling_workers
        sdk = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
        with running(
            self.server("gateway-sqlite", gateway_command(), self.sqlite_env, many)
        ) as server:
            self.measure(server, self._row(f"b-{many}w", many), _read_template(sdk))
            self._remember_rss(server)
        baseline = self.server("baseline", bench_command("baseline"), self._env("baseline"), many)
        with running(baseline) as server:
            self.measure(server, self._row(f"a-{many}w", many), wrk.Request("GET", "/"))

    def _publish(self, server: Server, seeded: seed.Seeded) -> None:
        answer = httpx.put(
            f"{server.base_url}/v1/templates",
            params={"path": TEMPLATE_PATH},
            json=template_ast(),
            headers={"Authorization": seeded.admin_key, "X-Agentmark-App-Id": seeded.app_id},
            timeout=30,
        )
        if answer.status_code >= 300:
            _say(f"   publishing the template answered {answer.status_code}: {answer.text[:200]}")

    def _half_peak(self, server: Server, peak: Row, request: wrk.Request) -> None:
        target = peak.rate / 2
        mean_delay_ms = 10.0
        # Each connection waits ~10 ms between requests plus its own latency at low load.
        latency_ms = 1.5 * 1000 / peak.rate * self.options.workers
        connections = max(2, round(target * (mean_delay_ms + latency_ms) / 1000))
        row = self._row("b-half", self.options.workers, connections)
        row.label = f"GET /v1/templates at ~{target:,.0f} req/s (half of (b))"
        self.measure(server, row, request, mean_delay_ms=mean_delay_ms)

    def _postgres_ingest(self, admin_url: str, workers: int) -> None:
        """(e) on PostgreSQL; with the run's worker count also (d) and the ceiling."""
        first = workers == self.options.workers
        row_id = "e-postgresql" if first else f"e-postgresql-{workers}w"
        row = self._row(row_id, workers, self.options.ingest_connections)
        try:
            self.report.settings["postgresql"] = seed.postgres_version(admin_url)
        except Exception as exc:  # any failure here means: no usable server
            _say(f"-- PostgreSQL at {admin_url} does not answer ({exc}); skipping (e) on it")
            row.skipped = "no PostgreSQL server"
            self.report.rows.append(row)
            return
        with seed.postgres_database(admin_url) as url:
            seeded = seed.prepare(url, self.pepper.encode())
            headers = {"Authorization": seeded.sdk_key, "X-Agentmark-App-Id": seeded.app_id}
            env = self._env("postgresql", url)
            server = self.server("gateway-postgresql", gateway_command(), env, row.workers)
            with running(server):
                if first and self.wants("d"):
                    score = wrk.Request(
                        "POST",
                        "/v1/scores",
                        {**headers, "Content-Type": "application/json"},
                        score_body(),
                    )
                    self.measure(server, self._row("d-postgresql", workers), score)
                if self.wants("e"):
                    self.ingest(server, row, headers, url, seeded.app_id)
                self._remember_rss(server)
            if first and self.wants("e"):
                self._ceiling("e-ceiling-postgresql", url, seeded.app_id)

    def _ceiling(self, row_id: str, url: str, app_id: str) -> None:
        row = self._row(row_id, 1, 1)
        row.in_process = True
        result = ceiling.measure(
            url, app_id, seconds=self.options.seconds, warmup=self.options.warmup
        )
        row.rate, row.spans_rate = result.rate, result.span_rate
        row.cpu_us = _per_request(result.cpu_seconds, result.batches)
        row.check = f"{result.batches:,} batches, one transaction each"
        self.report.rows.append(row)
        _say(f"   {row.id}: {row.spans_rate:,.0f} spans/s")


def _per_request(seconds: float, requests: int) -> float | None:
    return seconds * 1e6 / requests if requests else None


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {
        name: version(name)
        for name in (
            "uvicorn",
            "granian",
            "uvloop",
            "httptools",
            "fastapi",
            "starlette",
            "sqlalchemy",
        )
    }
    found["wrk"] = wrk.version()
    return found


def run(options: Options) -> Report:
    with tempfile.TemporaryDirectory(prefix="agw-bench-") as directory:
        bench = Bench(options, Path(directory))
        try:
            return bench.run()
        except BaseException:
            logs = Path(directory) / "logs"
            for log in sorted(logs.glob("*.log")) if logs.exists() else []:
                _say(f"== {log.name} (last lines)\n{log.read_text()[-1500:]}")
            raise
