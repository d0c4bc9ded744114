"""Estimated cost of the replayed tokens: a small price table the user can override.

Prices are US dollars per million tokens, keyed by model-name prefix; the longest matching prefix
wins ("gpt-4.1-mini-2025-04-14" is priced as "gpt-4.1-mini"). The built-in figures are OpenAI's
standard list prices as published when this table was written; they are an estimate, not a bill
(the Batch API charges half, cached input less). `--prices FILE.json` adds or replaces entries:

    {"gpt-4.1": {"input": 2.0, "output": 8.0}, "my-vllm-model": {"input": 0, "output": 0}}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrator.errors import BadInputError

__all__ = ["DEFAULT_PRICES", "Price", "PriceTable", "load_prices"]


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o4-mini": Price(1.10, 4.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}


class PriceTable:
    def __init__(self, prices: dict[str, Price] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    def price_of(self, model: str | None) -> Price | None:
        if not model:
            return None
        best = max((p for p in self.prices if model.startswith(p)), key=len, default=None)
        return self.prices[best] if best is not None else None

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
        price = self.price_of(model)
        if price is None:
            return None
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def load_prices(path: Path | None) -> PriceTable:
    """The built-in table, overridden entry by entry by the user's JSON file."""
    table = PriceTable()
    if path is None:
        return table
    try:
        data: Any = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise BadInputError(f"--prices {path}: cannot read it ({exc.strerror})") from None
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"--prices {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInputError(f"--prices {path}: expected an object of model prefix -> {{input, output}}")
    problems = []
    for prefix, entry in data.items():
        ok = isinstance(entry, dict) and all(
            isinstance(entry.get(k), int | float) and not isinstance(entry.get(k), bool) and entry[k] >= 0
            for k in ("input", "output")
        )
        if not ok:
            problems.append(
                f"{prefix!r}: needs non-negative numbers `input` and `output` (USD per 1M tokens)"
            )
            continue
        table.prices[prefix] = Price(float(entry["input"]), float(entry["output"]))
    if problems:
        raise BadInputError(f"--prices {path}: {len(problems)} unusable entr(y/ies)", problems=problems)
    return table
