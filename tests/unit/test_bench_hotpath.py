"""The in-process hot-path bench (``bench/hotpath.py``) runs and tabulates; no timing asserted."""

from __future__ import annotations

from agentmark_gateway.bench import hotpath


def test_every_row_runs_on_both_settings_and_answers_as_expected():
    # measure() raises if any request of a row gets another status than the row's.
    samples = hotpath.measure(rounds=2, requests=3)
    assert set(samples) == {(row, on) for row in hotpath.ROWS for on in (True, False)}
    assert all(len(costs) == 2 and min(costs) > 0 for costs in samples.values())


def test_the_table_pairs_each_rounds_batches():
    samples = {
        (row, on): ([10.0, 20.0, 30.0] if on else [10.0, 10.0, 30.0])
        for row in hotpath.ROWS
        for on in (True, False)
    }
    lines = hotpath.table(samples).splitlines()
    # Medians 10 (off) and 20 (on); the rounds' ratios 1, 2, 1: their median is 1.
    assert lines[2] == "| b | 10.00 | 20.00 | 1.000 |"
