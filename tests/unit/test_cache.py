import time

from agentmark_gateway.api_keys.cache import TTLCache


def test_cache_never_grows_past_its_bound():
    cache: TTLCache[int] = TTLCache(maxsize=3, ttl=60)
    for i in range(10):
        cache.set(str(i), i)
    assert len(cache) == 3
    assert cache.get("9") == 9 and cache.get("0") is None


def test_entries_expire():
    cache: TTLCache[int] = TTLCache(maxsize=3, ttl=0.01)
    cache.set("a", 1)
    time.sleep(0.02)
    assert cache.get("a") is None
