"""Server processes under test: start, find their workers, read their memory, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.extend(int(child) for child in task.read_text().split())
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_kib(pid: int, field_name: str) -> int:
    """``VmHWM`` (peak resident set) or ``VmRSS`` of a process, in KiB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and all its threads so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of the whole line, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Start a new ``VmHWM`` window (Linux >= 4.0); False when the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Server:
    """One server under test: ``agentmark-gateway serve`` or a bench launcher target."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/health", timeout: float = 60.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [*self.command, "--port", str(self.port), "--workers", str(self.workers)],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text()[-4000:]}")
            try:
                answer = httpx.get(f"{self.base_url}{ready_path}", timeout=1)
                if answer.status_code == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server's spawned workers, or the
        server itself (uvicorn with one worker serves in its own process; granian
        always spawns)."""
        assert self.process is not None
        spawned = [
            pid
            for pid in _children(self.process.pid)
            if "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
        ]
        return spawned or [self.process.pid]

    def reset_peaks(self) -> bool:
        return all([reset_peak(pid) for pid in self.worker_pids()])

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.worker_pids())

    def peak_mib(self) -> list[float]:
        return [memory_kib(pid, "VmHWM") / 1024 for pid in self.worker_pids()]

    def rss_mib(self) -> list[float]:
        return [memory_kib(pid, "VmRSS") / 1024 for pid in self.worker_pids()]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def gateway_command() -> list[str]:
    """The production server: the same command an operator runs."""
    return [sys.executable, "-m", "agentmark_gateway", "serve"]


def bench_command(target: str) -> list[str]:
    return [sys.executable, "-m", "agentmark_gateway.bench.serve", target]
