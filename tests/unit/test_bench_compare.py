"""The server comparison's setups and table (``bench/compare.py``); no timing asserted."""

from __future__ import annotations

import pytest

from agentmark_gateway.bench.compare import Samples, Setup, table


def test_a_setup_is_a_server_optionally_without_its_access_log():
    assert Setup.parse("granian") == Setup("granian", access_log=True)
    assert Setup.parse("uvicorn:no-access-log") == Setup("uvicorn", access_log=False)
    assert Setup.parse("uvicorn:no-access-log").name == "uvicorn:no-access-log"
    both = Setup.parse("uvicorn:no-usage:no-access-log")
    assert both == Setup("uvicorn", access_log=False, usage_counting=False)
    assert both.name == "uvicorn:no-access-log:no-usage"
    for wrong in ("hypercorn", "uvicorn:quiet", "uvicorn:no-usage:loud"):
        with pytest.raises(ValueError):
            Setup.parse(wrong)


def test_the_table_gives_medians_and_the_second_setup_as_shares_of_the_first():
    setups = [Setup("uvicorn"), Setup("granian")]
    samples = {
        ("a", "uvicorn"): Samples([(1000, 100, 5), (3000, 300, 9), (2000, 200, 7)]),
        ("a", "granian"): Samples([(3000, 50, 4), (1000, 150, 2), (4000, 100, 3)]),
    }
    lines = table(setups, ["a"], samples).splitlines()
    assert lines[2] == "| a | uvicorn | 2,000 | 200 | 7.0 |  |  |"
    # Rate 3,000 / 2,000; CPU 100 / 200 (below 1: less CPU a request).
    assert lines[3] == "| a | granian | 3,000 | 100 | 3.0 | 1.50 | 0.50 |"
