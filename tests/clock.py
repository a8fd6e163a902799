"""Helpers for tests that count requests in the real clock's rate-limit windows."""

import time

WINDOW_SECONDS = 60  # the default AGENTMARK_RATE_LIMIT_WINDOW_SECONDS


def wait_for_a_window_with(seconds_left: float) -> None:
    """Sleep into the next window if fewer than ``seconds_left`` remain in this one.

    Windows are fixed and aligned to the clock, so a test that compares counts
    across several requests must not straddle a window's end.
    """
    into = time.time() % WINDOW_SECONDS
    if into > WINDOW_SECONDS - seconds_left:
        time.sleep(WINDOW_SECONDS - into + 0.1)
