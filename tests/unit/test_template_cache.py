"""The bounds and the race rule of the per-process template answer cache."""

from __future__ import annotations

from agentmark_gateway.templates.cache import Rendered, TemplateCache


def _answer(size: int) -> Rendered:
    return Rendered(((b"content-type", b"application/json"),), b"x" * size)


def test_an_answer_rendered_before_a_change_is_not_kept():
    cache = TemplateCache(max_bytes=10_000, ttl=60)
    generation = cache.generation
    cache.forget_app("app_a")  # a publish landed while the answer was rendered
    cache.put("app_a", b"path=a.prompt.mdx", _answer(10), generation)
    assert cache.get("app_a", b"path=a.prompt.mdx") is None
    cache.put("app_a", b"path=a.prompt.mdx", _answer(10), cache.generation)
    assert cache.get("app_a", b"path=a.prompt.mdx") == _answer(10)


def test_forgetting_an_app_leaves_the_others():
    cache = TemplateCache(max_bytes=10_000, ttl=60)
    for app in ("app_a", "app_b"):
        cache.put(app, b"q", _answer(10), cache.generation)
    cache.forget_app("app_a")
    assert cache.get("app_a", b"q") is None and cache.get("app_b", b"q") is not None


def test_the_cache_holds_at_most_its_bytes_oldest_out_first():
    cache = TemplateCache(max_bytes=800, ttl=60)
    for n in range(10):
        cache.put("app", f"q{n}".encode(), _answer(100), cache.generation)
    assert cache.size_bytes <= 800 and len(cache) == 8
    assert cache.get("app", b"q0") is None and cache.get("app", b"q9") is not None
    cache.put("app", b"big", _answer(101), cache.generation)  # over an eighth: never kept
    assert cache.get("app", b"big") is None


def test_entries_expire(monkeypatch):
    import agentmark_gateway.templates.cache as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    cache = TemplateCache(max_bytes=10_000, ttl=5)
    cache.put("app", b"q", _answer(10), cache.generation)
    now[0] += 4.9
    assert cache.get("app", b"q") is not None
    now[0] += 0.2
    assert cache.get("app", b"q") is None and cache.size_bytes == 0


def test_a_zero_budget_keeps_nothing():
    cache = TemplateCache(max_bytes=0, ttl=60)
    cache.put("app", b"q", _answer(1), cache.generation)
    assert len(cache) == 0
