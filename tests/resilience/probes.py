"""A client that keeps asking several gateways the same question and notes each answer.

Used to measure how long a change made through one process takes to show on
all of them: every answer is stamped with the process and the moment it was
sent, so "the last old answer" and "the first new one" can be read off.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

PROBE_PATH = "/v1/templates"
# A template no one published: an admitted key gets 404, a refused one 401/403/429.
PROBE_PARAMS = {"path": "never-published.prompt.mdx"}


@dataclass(frozen=True)
class Answer:
    sent: float
    base: str
    status: int


@dataclass
class Prober:
    """Round-robin over ``bases`` with one key's headers, every ``interval`` seconds."""

    bases: list[str]
    headers: dict[str, str]
    interval: float = 0.02
    answers: list[Answer] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            turn = 0
            while not stop.is_set():
                base = self.bases[turn % len(self.bases)]
                turn += 1
                sent = time.monotonic()
                response = await client.get(
                    f"{base}{PROBE_PATH}", params=PROBE_PARAMS, headers=self.headers
                )
                self.answers.append(Answer(sent, base, response.status_code))
                await asyncio.sleep(self.interval)

    def since(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.sent >= moment]

    def last_sent_with(self, status: int, after: float) -> float | None:
        moments = [a.sent for a in self.answers if a.sent >= after and a.status == status]
        return max(moments) if moments else None
