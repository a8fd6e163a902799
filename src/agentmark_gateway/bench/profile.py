"""py-spy on a server worker while a scenario runs again, summarised as text.

Optional (``--profile b,f401``): needs ``py-spy`` (``pip install py-spy``) and
permission to trace the worker (root, or ptrace_scope 0). Only samples that
hold the GIL are kept, so the shares are of the worker's Python CPU time. The
raw stacks load into speedscope or flamegraph.pl; the summary lists each
function's share of samples, alone (self) and with what it calls (inclusive).
SQLAlchemy runs queries in greenlets, which py-spy shows as stacks of their own
(rooted at e.g. ``Session.execute``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def summarize(raw: str, top: int = 30) -> str:
    """Self and inclusive shares of samples per function, from py-spy's raw stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (was the worker busy, and may py-spy trace it?)\n"
    lines = [f"{total} samples", "", "self time:"]
    lines += [f"{count / total:6.1%}  {frame}" for frame, count in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"{count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


class Profiler:
    def __init__(self, pid: int, directory: Path, name: str) -> None:
        self.pid = pid
        directory.mkdir(parents=True, exist_ok=True)
        stem = name.replace(":", "")
        self.raw = directory / f"{stem}.stacks.txt"
        self.summary_path = directory / f"{stem}.profile.txt"

    @contextlib.contextmanager
    def recording(self, seconds: float) -> Iterator[None]:
        # Also next to this interpreter: a venv's bin folder is often not on PATH.
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if spy is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        process = subprocess.Popen(  # noqa: S603 (fixed arguments)
            [
                spy,
                "record",
                "--pid",
                str(self.pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                "250",
                "--function",
                # Only samples holding the GIL: Python's CPU work, not idle pool threads.
                "--gil",
                "--format",
                "raw",
                "--output",
                str(self.raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            yield
        finally:
            _, errors = process.communicate(timeout=seconds + 60)
        if process.returncode != 0 or not self.raw.exists():
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-1000:]}")
        self.summary_path.write_text(summarize(self.raw.read_text()))
