"""The regression gate's rule, as the clients apply it to a baseline (CLIENTS.md 5.4).

The gateway only serves the baseline (``service.find_baseline``); the SDK and
the CLI decide what regressed (prompt-core's ``gate.ts``). The dashboard's
comparison of two runs marks rows by this same rule, so what it shows as
regressed is what a CI gate with the same tolerance would fail.
"""

from __future__ import annotations

from collections.abc import Iterable

from agentmark_gateway.experiments.schemas import BaselineRow


def baseline_scores(rows: Iterable[BaselineRow]) -> dict[tuple[str, str], float]:
    """The baseline by (input hash, scorer), as the client reads it: the last row of a
    pair wins."""
    return {(row.inputHash, row.scorer): row.score for row in rows}


def regressed(baseline: float | None, score: float | None, tolerance: float | None) -> bool:
    """A row's score regressed when there is a tolerance, both scores exist, the
    baseline is above zero and the score fell by more than ``tolerance`` of it.
    Without a tolerance nothing regresses."""
    if tolerance is None or baseline is None or score is None or baseline <= 0:
        return False
    return (baseline - score) / baseline > tolerance
