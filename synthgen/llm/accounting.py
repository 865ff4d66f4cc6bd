"""Token and cost accounting for run.json: pure arithmetic over the usage counters every backend keeps.

No I/O and no engine imports, so it is unit-tested on its own. Prices are per million tokens, in
whatever currency the config's price table uses (the table names it; default "USD").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Price:
    """Price per million prompt and completion tokens."""

    prompt: float
    completion: float
    currency: str = "USD"

    def __post_init__(self) -> None:
        if self.prompt < 0 or self.completion < 0:
            raise ValueError("prices must be >= 0")


def _ratio(num: float, den: float, digits: int = 2) -> float | None:
    """num / den rounded, or None when there is nothing to divide by."""
    return round(num / den, digits) if den else None


def cost(prompt_tokens: int, completion_tokens: int, price: Price) -> float:
    """Estimated cost of the tokens at the given per-million prices."""
    return (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1_000_000


def summarize(usage: Mapping[str, Any], accepted: int, price: Price | None = None,
              candidates: int | None = None) -> dict[str, Any]:
    """The `llm` block of run.json: the usage counters plus per-accepted-negative rates and a cost.

    `usage` holds at least prompt_tokens and completion_tokens (LLMUsage.as_dict()); `accepted` is the
    number of negatives written to the training set; `candidates` (optional) the negatives the model
    produced before validation.
    """
    if accepted < 0:
        raise ValueError("accepted must be >= 0")
    prompt = int(usage.get("prompt_tokens", 0) or 0)
    completion = int(usage.get("completion_tokens", 0) or 0)
    total = prompt + completion
    out: dict[str, Any] = dict(usage)
    out["total_tokens"] = total
    out["accepted_negatives"] = accepted
    out["tokens_per_accepted_negative"] = _ratio(total, accepted)
    out["completion_tokens_per_accepted_negative"] = _ratio(completion, accepted)
    out["accepted_negatives_per_1k_tokens"] = _ratio(1000 * accepted, total, 4)
    if candidates is not None:
        out["candidates"] = candidates
        out["acceptance_rate"] = _ratio(accepted, candidates, 4)
    if price is None:
        out["cost"] = None
    else:
        total_cost = cost(prompt, completion, price)
        out["cost"] = {
            "currency": price.currency,
            "price_per_million": {"prompt": price.prompt, "completion": price.completion},
            "prompt": round(cost(prompt, 0, price), 6),
            "completion": round(cost(0, completion, price), 6),
            "total": round(total_cost, 6),
            "per_accepted_negative": round(total_cost / accepted, 8) if accepted else None,
            "per_1k_accepted_negatives": round(1000 * total_cost / accepted, 4) if accepted else None,
        }
    return out
