"""Usage rows added up: for a bucket of a series, a key, or an app."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentmark_gateway.usage.models import KeyUsage

OUTCOMES = ("ok", "client_error", "unauthorized", "forbidden", "rate_limited", "server_error")


@dataclass
class Totals:
    outcomes: Counter[str] = field(default_factory=Counter)
    spans: int = 0
    scores: int = 0
    # "perm perm" (a route's required set) -> admitted requests; permission -> 403s.
    permission_sets: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    last_client_address: str | None = None
    last_user_agent: str | None = None
    last_seen_at: datetime | None = None

    def add(self, row: KeyUsage) -> None:
        for outcome in OUTCOMES:
            self.outcomes[outcome] += getattr(row, outcome) or 0
        self.spans += row.spans or 0
        self.scores += row.scores or 0
        self.permission_sets.update(row.permission_sets or {})
        self.refused.update(row.refused or {})
        if row.last_seen_at is not None and (
            self.last_seen_at is None or row.last_seen_at > self.last_seen_at
        ):
            self.last_seen_at = row.last_seen_at
            self.last_client_address = row.last_client_address or self.last_client_address
            self.last_user_agent = row.last_user_agent or self.last_user_agent

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def permissions_used(self) -> Counter[str]:
        """Admitted requests by each permission they exercised."""
        used: Counter[str] = Counter()
        for permission_set, count in self.permission_sets.items():
            for permission in permission_set.split():
                used[permission] += count
        return used

    def refused_by(self, permissions: frozenset[str]) -> int:
        """How many of the admitted requests a key holding ``permissions`` would have refused."""
        return sum(
            count
            for permission_set, count in self.permission_sets.items()
            if not set(permission_set.split()) <= permissions
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "outcomes": {
                "2xx": self.outcomes["ok"],
                "4xx": self.outcomes["client_error"],
                "401": self.outcomes["unauthorized"],
                "403": self.outcomes["forbidden"],
                "429": self.outcomes["rate_limited"],
                "5xx": self.outcomes["server_error"],
            },
            "permissions": dict(sorted(self.permissions_used().items())),
            "refused": dict(sorted(self.refused.items())),
            "spans": self.spans,
            "scores": self.scores,
        }

    def fields(self) -> dict[str, Any]:
        """As the columns of one ``KeyUsage`` row (for folding minutes into an hour)."""
        return {
            **{outcome: self.outcomes[outcome] for outcome in OUTCOMES},
            "spans": self.spans,
            "scores": self.scores,
            "permission_sets": dict(self.permission_sets),
            "refused": dict(self.refused),
            "last_client_address": self.last_client_address,
            "last_user_agent": self.last_user_agent,
            "last_seen_at": self.last_seen_at,
        }
