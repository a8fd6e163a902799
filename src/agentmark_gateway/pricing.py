"""Model prices: the shipped table (``prices.json``) under the operator's overrides.

Prices are USD per million tokens. A span's cost is computed once, at ingest,
from the prices of that moment; a span that reports its own cost keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

# A dated or suffixed model name (gpt-4o-2024-08-06, claude-3-5-sonnet@20240620,
# ...-v1:0) is priced as its family: the longest known name it starts with,
# followed by one of these characters.
_SUFFIX_STARTS = ("-", "@", ":")


@dataclass(frozen=True)
class Price:
    input: float
    output: float


class PriceTable:
    def __init__(self, prices: dict[str, Price]) -> None:
        self.prices = MappingProxyType({name.lower(): price for name, price in prices.items()})

    def lookup(self, model: str | None) -> Price | None:
        if not model:
            return None
        name = model.strip().lower()
        if name in self.prices:
            return self.prices[name]
        name = _without_provider(name)
        if name in self.prices:
            return self.prices[name]
        # Each cut before a suffix character, longest first (gpt-4o-mini wins over
        # gpt-4o for gpt-4o-mini-2024-07-18): a few dict look-ups, not a scan of
        # every known model for each span of an unknown one.
        for end in range(len(name) - 1, 0, -1):
            if name[end] in _SUFFIX_STARTS and (price := self.prices.get(name[:end])):
                return price
        return None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """USD for the tokens, or None when the model is unknown or no tokens were used."""
        if input_tokens <= 0 and output_tokens <= 0:
            return None
        price = self.lookup(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def _without_provider(name: str) -> str:
    """``openai/gpt-4o`` -> ``gpt-4o``; ``us.anthropic.claude-3-5-sonnet-...`` -> ``claude-...``."""
    name = name.rsplit("/", 1)[-1]
    head, dash, tail = name.partition("-")
    if "." in head:
        name = head.rsplit(".", 1)[-1] + dash + tail
    return name


def _shipped() -> dict[str, Any]:
    text = resources.files("agentmark_gateway").joinpath("prices.json").read_text()
    models: dict[str, Any] = json.loads(text)["models"]
    return models


@lru_cache(maxsize=8)
def _table(overrides_json: str) -> PriceTable:
    merged = {**_shipped(), **json.loads(overrides_json)}
    return PriceTable(
        {
            name: Price(
                input=float(entry.get("input", 0.0)), output=float(entry.get("output", 0.0))
            )
            for name, entry in merged.items()
        }
    )


def price_table(overrides: dict[str, dict[str, float]] | None = None) -> PriceTable:
    """The shipped prices with ``settings.model_prices`` on top (built once per override set)."""
    return _table(json.dumps(overrides or {}, sort_keys=True))
