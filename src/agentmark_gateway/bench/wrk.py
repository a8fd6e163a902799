"""Driving wrk: a Lua script per scenario (written into a temp dir), JSON out of ``done()``."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    statuses: dict[int, int]
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def lua_script(request: Request, body_file: Path | None, mean_delay_ms: float | None) -> str:
    """The request, a status count per thread, an optional random pause, a JSON summary."""
    lines = [f"wrk.method = {_lua_string(request.method)}"]
    lines += [
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
        for name, value in request.headers.items()
    ]
    if body_file is not None:
        lines += [
            f"local file = io.open({_lua_string(str(body_file))}, 'rb')",
            "wrk.body = file:read('*a')",
            "file:close()",
        ]
    lines.append(
        """
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  math.randomseed(os.time() * 1000 + id)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
"""
    )
    if mean_delay_ms is not None:
        # Exponential pauses: each connection sends like a Poisson source, so the
        # connections do not fall into step and arrive in bursts.
        lines.append(
            f"""
function delay()
  return math.floor(-math.log(1 - math.random()) * {mean_delay_ms:.3f} + 0.5)
end
"""
        )
    lines.append(
        """
function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      parts[status] = (parts[status] or 0) + count
    end
  end
  local counts = {}
  for status, count in pairs(parts) do
    table.insert(counts, string.format('"%d": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "socket_errors": %d, "statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, errors.connect + errors.read + errors.write + errors.timeout,
    table.concat(counts, ", ")))
end
"""
    )
    return "\n".join(lines)


def parse_output(output: str) -> WrkResult:
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return WrkResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                mean_ms=data["mean_us"] / 1000,
                statuses={int(k): v for k, v in data["statuses"].items()},
                socket_errors=data["socket_errors"],
            )
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/bench does it)")
    return path


def version() -> str:
    """e.g. ``debian/4.1.0-3+b2`` (wrk prints its version in its usage text)."""
    done = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    first = (done.stdout or done.stderr or "wrk unknown").splitlines()[0]
    return first.split(" [")[0].removeprefix("wrk ").strip()


def run(
    base_url: str,
    request: Request,
    *,
    seconds: float,
    connections: int,
    threads: int,
    workdir: Path,
    mean_delay_ms: float | None = None,
) -> WrkResult:
    """One wrk run against ``base_url``; the script and body are written into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    body_file = None
    if request.body is not None:
        body_file = workdir / "body.bin"
        body_file.write_bytes(request.body)
    script = workdir / "scenario.lua"
    script.write_text(lua_script(request, body_file, mean_delay_ms))
    threads = max(1, min(threads, connections))
    command = [
        wrk_path(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        f"{base_url}{request.path}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return parse_output(done.stdout)
