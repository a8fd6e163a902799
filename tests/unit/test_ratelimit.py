"""The limiter's decisions, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

import pytest

from agentmark_gateway.api_keys.verify import VerifiedKey
from agentmark_gateway.ratelimit import Decision, RateLimiter

WINDOW_START = 1_800_000_000.0  # a multiple of 60: the start of a window


class Clock:
    def __init__(self, now: float = WINDOW_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(key_id: str = "key_a", app_id: str = "app_1", limit: int | None = None) -> VerifiedKey:
    return VerifiedKey(
        id=key_id,
        app_id=app_id,
        name=key_id,
        permissions=frozenset({"trace.read"}),
        expires_at=None,
        rate_limit_per_minute=limit,
    )


def limiter(clock: Clock, **kwargs: object) -> RateLimiter:
    return RateLimiter(clock=clock, **kwargs)  # type: ignore[arg-type]


def test_no_limit_anywhere_means_no_decision_and_no_counting():
    lim = limiter(Clock())
    assert lim.check(key()) is None
    assert lim._local == {}


def test_a_keys_own_limit_counts_down_then_refuses_until_the_window_ends():
    clock = Clock(WINDOW_START + 15.2)
    lim = limiter(clock)
    decisions = [lim.check(key(limit=3)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.limit == 3 and d.reset_at == WINDOW_START + 60 for d in decisions)
    refused = decisions[-1]
    assert refused.retry_after == 45  # 44.8 seconds left, rounded up
    assert refused.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(WINDOW_START + 60)),
        "Retry-After": "45",
    }
    assert "Retry-After" not in decisions[0].headers()
    clock.now = WINDOW_START + 60
    again = lim.check(key(limit=3))
    assert again.allowed and again.remaining == 2 and again.reset_at == WINDOW_START + 120


def test_retry_after_is_at_least_one_second():
    clock = Clock(WINDOW_START + 59.999)
    lim = limiter(clock)
    lim.check(key(limit=1))
    assert lim.check(key(limit=1)).retry_after == 1


def test_the_default_per_key_limit_applies_to_keys_without_their_own():
    lim = limiter(Clock(), per_key=2)
    assert [lim.check(key()).allowed for _ in range(3)] == [True, True, False]
    # A key's own limit wins over the default, higher or lower.
    assert [lim.check(key("key_b", limit=4)).allowed for _ in range(5)] == [True] * 4 + [False]
    assert lim.check(key("key_c", limit=1)).limit == 1


def test_zero_as_a_keys_limit_means_the_default():
    lim = limiter(Clock(), per_key=5)
    assert lim.check(key(limit=0)).limit == 5


def test_the_app_limit_is_shared_by_all_keys_of_the_app():
    lim = limiter(Clock(), per_app=3)
    answers = [lim.check(key(f"key_{i}")).allowed for i in range(4)]
    assert answers == [True, True, True, False]
    assert lim.check(key("key_x", app_id="app_2")).allowed


def test_a_key_refused_for_its_own_limit_does_not_use_the_apps_budget():
    lim = limiter(Clock(), per_app=5)
    for _ in range(10):
        lim.check(key("key_greedy", limit=2))
    others = [lim.check(key("key_other")) for _ in range(4)]
    assert [d.allowed for d in others] == [True, True, True, False]
    assert others[-1].limit == 5


def test_a_key_refused_for_the_app_limit_keeps_its_own_budget():
    clock = Clock()
    lim = limiter(clock, per_app=2)
    lim.check(key("key_a"))
    lim.check(key("key_a"))
    assert not lim.check(key("key_b", limit=10)).allowed
    assert lim._local.get("key:key_b", 0) == 0


def test_the_headers_report_the_limit_closer_to_running_out():
    lim = limiter(Clock(), per_app=100)
    first = lim.check(key(limit=10))
    assert (first.limit, first.remaining) == (10, 9)
    lim2 = limiter(Clock(), per_app=3)
    second = lim2.check(key(limit=10))
    assert (second.limit, second.remaining) == (3, 2)


def test_memory_stays_bounded_by_forgetting_the_oldest_bucket():
    lim = limiter(Clock(), per_key=100, max_buckets=3)
    for i in range(10):
        lim.check(key(f"key_{i}"))
    assert len(lim._local) == 3
    assert set(lim._local) == {"key:key_7", "key:key_8", "key:key_9"}


def test_a_new_window_drops_every_count():
    clock = Clock()
    lim = limiter(clock, per_key=100)
    for i in range(5):
        lim.check(key(f"key_{i}"))
    clock.now += 60
    lim.check(key("key_new"))
    assert lim._local == {"key:key_new": 1}


def test_a_short_window_resets_on_its_own_schedule():
    clock = Clock(WINDOW_START)
    lim = limiter(clock, per_key=1, window_seconds=0.5)
    assert lim.check(key()).allowed
    assert not lim.check(key()).allowed
    clock.now += 0.5
    decision = lim.check(key())
    assert decision.allowed and decision.reset_at == WINDOW_START + 1.0


# -- sharing counts through a store ---------------------------------------------


class FakeStore:
    """What the database and Redis stores do, in a dict shared by 'processes'."""

    def __init__(self) -> None:
        self.totals: dict[tuple[int, str], int] = {}
        self.fail = False
        self.forgotten: list[int] = []
        self.exchanges = 0

    async def exchange(
        self, window_id: int, increments: Mapping[str, int], buckets: Collection[str]
    ) -> dict[str, int]:
        if self.fail:
            raise ConnectionError("store down")
        self.exchanges += 1
        for bucket, count in increments.items():
            self.totals[window_id, bucket] = self.totals.get((window_id, bucket), 0) + count
        return {b: self.totals[window_id, b] for b in buckets if (window_id, b) in self.totals}

    async def forget_before(self, window_id: int) -> None:
        self.forgotten.append(window_id)

    async def close(self) -> None:
        pass


def test_two_processes_share_the_count_after_a_sync():
    clock, store = Clock(), FakeStore()
    one = limiter(clock, per_key=5, store=store)
    two = limiter(clock, per_key=5, store=store)
    for _ in range(3):
        assert one.check(key()).allowed
    asyncio.run(one.sync())
    asyncio.run(two.sync())  # two has seen nothing yet: nothing to read back
    assert two.check(key()).remaining == 4  # before its sync it knows only its own
    asyncio.run(two.sync())
    asyncio.run(one.sync())
    assert [two.check(key()).allowed for _ in range(2)] == [True, False]
    asyncio.run(two.sync())
    asyncio.run(one.sync())
    assert not one.check(key()).allowed
    assert store.totals[(one._window_id, "key:key_a")] == 5


def test_the_shared_total_holds_within_one_sync_of_tolerance():
    clock, store = Clock(), FakeStore()
    processes = [limiter(clock, per_key=20, store=store) for _ in range(2)]
    admitted = 0
    for _round in range(30):
        for process in processes:
            admitted += sum(bool(process.check(key()).allowed) for _ in range(2))
            asyncio.run(process.sync())
    # Each process can be one sync behind the other: at most a round's worth over.
    assert 20 <= admitted <= 22


def test_counts_survive_a_failed_sync_and_are_sent_with_the_next():
    clock, store = Clock(), FakeStore()
    lim = limiter(clock, per_key=10, store=store)
    for _ in range(3):
        lim.check(key())
    store.fail = True
    with pytest.raises(ConnectionError):
        asyncio.run(lim.sync())
    assert lim.check(key()).remaining == 6  # still counted locally
    store.fail = False
    asyncio.run(lim.sync())
    assert store.totals[(lim._window_id, "key:key_a")] == 4
    assert lim.check(key()).remaining == 5


def test_a_sync_in_a_new_window_drops_old_counts_and_tells_the_store():
    clock, store = Clock(), FakeStore()
    lim = limiter(clock, per_key=10, store=store)
    lim.check(key())
    asyncio.run(lim.sync())
    first_window = lim._window_id
    clock.now += 60
    asyncio.run(lim.sync())
    assert lim._local == {} and lim._shared == {}
    assert store.forgotten == [first_window - 1, first_window]


def test_an_idle_limiter_does_not_talk_to_the_store():
    clock, store = Clock(), FakeStore()
    lim = limiter(clock, per_key=10, store=store)
    asyncio.run(lim.sync())
    asyncio.run(lim.sync())
    assert store.exchanges == 0


def test_the_background_loop_keeps_running_when_the_store_fails(caplog):
    clock, store = Clock(), FakeStore()
    lim = limiter(clock, per_key=10, store=store)
    lim.check(key())
    store.fail = True

    async def run_briefly() -> None:
        task = asyncio.create_task(lim.run(0.01))
        await asyncio.sleep(0.05)
        store.fail = False
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level("INFO", logger="agentmark_gateway.ratelimit.limiter"):
        asyncio.run(run_briefly())
    assert store.totals[(lim._window_id, "key:key_a")] == 1
    warnings = [r for r in caplog.records if "unreachable" in r.message]
    assert len(warnings) == 1


def test_a_decision_is_cheap_to_build():
    # Guard against turning Decision back into a frozen dataclass (4x the cost).
    assert not Decision.__dataclass_params__.frozen  # type: ignore[attr-defined]
