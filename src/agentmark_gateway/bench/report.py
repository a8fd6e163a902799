"""The results table, the targets (issues 5 and 12) judged from it, and the files it goes to."""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

DOCS_START = "<!-- bench-results:start -->"
DOCS_END = "<!-- bench-results:end -->"
MEMORY_LIMIT_MIB = 200.0
# Issue 12: spans a second of one worker, and (e)'s share of the in-process ceiling.
SPANS_TARGETS = {"sqlite": 25_000, "postgresql": 30_000}
CEILING_SHARE_TARGET = 0.5
# Issue 12: POST /v1/scores against the bare app, and its p99 at 32 connections.
SCORES_SHARE_TARGET = 0.25
SCORES_P99_MS = 50.0


@dataclass
class Row:
    """One scenario's measurement (or why it was skipped)."""

    id: str
    label: str
    workers: int
    connections: int
    rate: float = 0.0  # requests a second
    spans_rate: float | None = None
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    peak_mib: list[float] = field(default_factory=list)  # VmHWM of each worker
    # Server CPU (all workers, all threads) per request: steadier than req/s on a busy machine.
    cpu_us: float | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    expected_status: int | None = None
    errors: int = 0
    check: str = ""  # what was verified besides the status, e.g. spans in the database
    check_ok: bool = True
    skipped: str | None = None
    in_process: bool = False  # measured without HTTP: no statuses to check

    @property
    def statuses_ok(self) -> bool:
        if self.in_process:
            return not self.skipped
        return self._statuses_ok

    @property
    def _statuses_ok(self) -> bool:
        if self.skipped or not self.statuses:
            return False
        if self.expected_status is None:
            return all(200 <= status < 300 for status in self.statuses)
        return set(self.statuses) == {self.expected_status}


@dataclass
class Report:
    started: str
    command: str
    machine: dict[str, str]
    settings: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    rss_after_mib: dict[str, list[float]] = field(default_factory=dict)

    def row(self, row_id: str) -> Row | None:
        for row in self.rows:
            if row.id == row_id and not row.skipped:
                return row
        return None


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _baseline(row: Row, report: Report) -> Row | None:
    """The (a) row with the same worker count; none for ingest, which is counted in spans."""
    if row.id.startswith("e"):
        return None
    return next(
        (
            r
            for r in report.rows
            if r.id.startswith("a") and r.workers == row.workers and not r.skipped
        ),
        None,
    )


def _ratio(row: Row, report: Report) -> float | None:
    base = _baseline(row, report)
    return row.rate / base.rate if base and base.rate else None


def _cpu_ratio(row: Row, report: Report) -> float | None:
    """(a)'s CPU per request over this row's: the throughput share on an uncontended core."""
    base = _baseline(row, report)
    if base is None or not base.cpu_us or not row.cpu_us:
        return None
    return base.cpu_us / row.cpu_us


def _number(value: float) -> str:
    return f"{value:,.0f}"


def table(report: Report) -> str:
    lines = [
        "| | scenario | workers | conns | req/s | spans/s | p50 ms | p99 ms | vs (a) "
        "| server CPU µs/req | vs (a) by CPU | peak RSS/worker MiB | responses |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        if row.skipped:
            lines.append(
                f"| {row.id} | {row.label} | {row.workers} | {row.connections} "
                f"| skipped: {row.skipped} | | | | | | | | |"
            )
            continue
        ratio, cpu_ratio = _ratio(row, report), _cpu_ratio(row, report)
        statuses = ", ".join(
            f"{status}: {_number(count)}" for status, count in sorted(row.statuses.items())
        )
        if row.errors:
            statuses += f", socket errors: {row.errors}"
        if not row.statuses_ok:
            statuses += " (unexpected)"
        if row.check:
            statuses += f"; {row.check}"
        lines.append(
            "| "
            + " | ".join(
                [
                    row.id,
                    row.label,
                    str(row.workers),
                    str(row.connections),
                    _number(row.rate),
                    _number(row.spans_rate) if row.spans_rate is not None else "",
                    f"{row.p50_ms:.2f}",
                    f"{row.p99_ms:.2f}",
                    f"{ratio:.2f}" if ratio is not None else "",
                    f"{row.cpu_us:,.0f}" if row.cpu_us is not None else "",
                    f"{cpu_ratio:.2f}" if cpu_ratio is not None else "",
                    " / ".join(f"{mib:.0f}" for mib in row.peak_mib),
                    statuses,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run


def _share(a: Row | None, b: Row | None) -> float | None:
    return a.rate / b.rate if a and b and b.rate else None


def _cpu_share(a: Row | None, b: Row | None) -> float | None:
    return b.cpu_us / a.cpu_us if a and b and a.cpu_us and b.cpu_us else None


def targets(report: Report) -> list[Target]:
    row = report.row
    found: list[Target] = []

    def ratio_target(name: str, first: str, second: str, bound: float) -> None:
        share = _share(row(first), row(second))
        if share is None:
            found.append(Target(name, "not measured", None))
            return
        by_cpu = _cpu_share(row(first), row(second))
        note = f" (by CPU per request: {by_cpu:.2f})" if by_cpu is not None else ""
        found.append(Target(name, f"{share:.2f}{note}", share >= bound))

    # Issue 12's bounds (issue 5 asked 0.5 and 0.8).
    ratio_target("(b) >= 0.85 of (a)", "b", "a", 0.85)
    ratio_target("(b) >= 0.9 of (c)", "b", "c", 0.9)
    ratio_target("(f) 401 >= 0.85 of (a)", "f401", "a", 0.85)
    ratio_target("(f) 403 >= 0.85 of (a)", "f403", "a", 0.85)
    for database, spans_target in SPANS_TARGETS.items():
        scores = row("d" if database == "sqlite" else f"d-{database}")
        name = f"(d) on {database} >= {SCORES_SHARE_TARGET} of (a), p99 <= {SCORES_P99_MS:.0f} ms"
        share = _share(scores, row("a"))
        if scores is None or share is None:
            found.append(Target(name, "not measured", None))
        else:
            by_cpu = _cpu_share(scores, row("a"))
            note = f" (by CPU per request: {by_cpu:.2f})" if by_cpu is not None else ""
            found.append(
                Target(
                    name,
                    f"{share:.2f}{note}, p99 {scores.p99_ms:.1f} ms",
                    share >= SCORES_SHARE_TARGET and scores.p99_ms <= SCORES_P99_MS,
                )
            )
        ingest = row(f"e-{database}")
        name = f"(e) >= {spans_target:,} spans/s on {database}, every acknowledged span stored"
        if ingest is None or ingest.spans_rate is None:
            found.append(Target(name, "not measured", None))
        else:
            met = ingest.spans_rate >= spans_target and ingest.check_ok
            found.append(Target(name, f"{ingest.spans_rate:,.0f} spans/s; {ingest.check}", met))
        top = row(f"e-ceiling-{database}")
        name = f"(e) on {database} >= {CEILING_SHARE_TARGET} of the in-process ceiling"
        if ingest is None or top is None or not ingest.spans_rate or not top.spans_rate:
            found.append(Target(name, "not measured", None))
        else:
            share = ingest.spans_rate / top.spans_rate
            found.append(
                Target(
                    name,
                    f"{share:.2f} ({ingest.spans_rate:,.0f} of {top.spans_rate:,.0f} spans/s)",
                    share >= CEILING_SHARE_TARGET,
                )
            )
    half = row("b-half")
    if half is None:
        found.append(Target("(b) p99 at half of peak <= 10 ms", "not measured", None))
    else:
        found.append(
            Target(
                "(b) p99 at half of peak <= 10 ms",
                f"{half.p99_ms:.2f} ms at {half.rate:,.0f} req/s",
                half.p99_ms <= 10.0,
            )
        )
    peaks = [mib for r in report.rows if not r.skipped for mib in r.peak_mib]
    after = [mib for values in report.rss_after_mib.values() for mib in values]
    if peaks:
        found.append(
            Target(
                f"every worker < {MEMORY_LIMIT_MIB:.0f} MiB",
                f"peak {max(peaks):.0f} MiB, after the run {max(after, default=0):.0f} MiB",
                max(peaks) < MEMORY_LIMIT_MIB,
            )
        )
    single = row("b")
    scaled = next((r for r in report.rows if re.fullmatch(r"b-\d+w", r.id) and not r.skipped), None)
    if scaled and single and single.rate and scaled.workers > single.workers:
        base_scaling = _share(row(f"a-{scaled.workers}w"), row("a"))
        note = f" (bare ASGI: {base_scaling:.2f}x)" if base_scaling else ""
        share = scaled.rate / single.rate
        # "Close to linear": at least 80% of the ideal speed-up.
        ideal = scaled.workers / single.workers
        found.append(
            Target(
                f"(b) with {scaled.workers} workers >= {0.8 * ideal:.1f}x {single.workers}",
                f"{share:.2f}x{note}",
                share >= 0.8 * ideal,
            )
        )
    for r in report.rows:
        if not r.skipped and not r.statuses_ok:
            found.append(Target(f"{r.id} answered as expected", "unexpected statuses", False))
    return found


def targets_markdown(report: Report) -> str:
    marks = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["| target | measured | |", "|---|---|---|"]
    lines += [f"| {t.name} | {t.measured} | {marks[t.met]} |" for t in targets(report)]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    m = report.machine
    return "\n".join(
        [
            f"Run {report.started}: `{report.command}`",
            "",
            f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, {m['kernel']}, "
            f"Python {m['python']}; "
            + ", ".join(f"{k} {v}" for k, v in report.settings.get("versions", {}).items()),
            "",
            "Load average (1 min) before and after: "
            f"{report.settings.get('load_average_before', '?')} / "
            f"{report.settings.get('load_average_after', '?')}. "
            f"{report.settings.get('seconds', '?')} s per scenario after "
            f"{report.settings.get('warmup', '?')} s of warm-up. "
            f"Server: {report.settings.get('server', 'uvicorn')}.",
            "",
            table(report),
            "",
            targets_markdown(report),
            "",
        ]
    )


def write(report: Report, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = report.started.replace(":", "").replace("-", "")
    md_path = directory / f"{stamp}.md"
    json_path = directory / f"{stamp}.json"
    md_path.write_text(f"# Benchmark {report.started}\n\n{markdown(report)}")
    payload = asdict(report)
    payload["targets"] = [asdict(t) for t in targets(report)]
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return md_path, json_path


def update_docs(report: Report, path: Path) -> None:
    """Replace the results between the markers of ``docs/performance.md``."""
    text = path.read_text()
    pattern = re.compile(re.escape(DOCS_START) + ".*?" + re.escape(DOCS_END), re.S)
    if not pattern.search(text):
        raise RuntimeError(f"{path} has no {DOCS_START} ... {DOCS_END} section")
    replacement = f"{DOCS_START}\n{markdown(report)}{DOCS_END}"
    path.write_text(pattern.sub(lambda _: replacement, text))


def now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
