"""The regression gate's rule (CLIENTS.md 5.4), which the dashboard's comparison uses."""

from __future__ import annotations

import pytest

from agentmark_gateway.experiments.gate import baseline_scores, regressed
from agentmark_gateway.experiments.schemas import BaselineRow


@pytest.mark.parametrize(
    ("baseline", "score", "tolerance", "expected"),
    [
        (1.0, 0.0, 0.0, True),
        (1.0, 1.0, 0.0, False),
        (1.0, 1.5, 0.0, False),  # better is never a regression
        (0.5, 0.4, 0.19, True),  # fell by 20%
        (0.5, 0.4, 0.2, False),  # by no more than the tolerance
        (0.0, -1.0, 0.0, False),  # a baseline of zero or less never regresses
        (-1.0, -2.0, 0.0, False),
        (1.0, 0.0, None, False),  # without a tolerance nothing regresses
        (None, 0.0, 0.0, False),  # a row the baseline lacks
        (1.0, None, 0.0, False),  # a scorer the row lacks
    ],
)
def test_a_score_regressed_by_the_gate_s_rule(baseline, score, tolerance, expected):
    assert regressed(baseline, score, tolerance) is expected


def test_the_last_baseline_row_of_a_pair_wins_as_the_client_reads_it():
    rows = [
        BaselineRow(inputHash="h1", scorer="exact", score=1),
        BaselineRow(inputHash="h1", scorer="length", score=0.5),
        BaselineRow(inputHash="h1", scorer="exact", score=0.25),
    ]
    assert baseline_scores(rows) == {("h1", "exact"): 0.25, ("h1", "length"): 0.5}
