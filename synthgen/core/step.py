"""The one base every step derives from: Step (batch in, batch out) and Filter (keep/drop with a reason).

A step is a callable over a batch (dict of lists) with no hidden global state, so the same object runs
here, in `datasets.Dataset.map(step, batched=True)`, or in Ray Data's `map_batches`. Heavy resources
(models, HTTP clients) are opened lazily by `setup()` once per worker and released by `close()`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synthgen.core.schema import Batch, take

REASON_COLUMNS = ("reason", "rule", "details")


class Reject(str):
    """Why a row was dropped. The structure is the source: `rule` and the numbers that fired it (`values`); the
    human text (this str, as written to rejects/) is derived from them through `template`.

    >>> r = Reject("too_short", "chars={chars} < {min_chars}", chars=3, min_chars=20)
    >>> str(r), r.rule, r.values
    ('too_short (chars=3 < 20)', 'too_short', {'chars': 3, 'min_chars': 20})
    """

    rule: str
    values: dict[str, Any]

    def __new__(cls, rule: str, template: str = "", **values: Any) -> "Reject":
        obj = super().__new__(cls, f"{rule} ({template.format(**values)})" if template else rule)
        obj.rule, obj.values = rule, values
        return obj

    def __reduce__(self):  # pickles (Ray, multiprocessing) with its structure
        return _restore, (str(self), self.rule, self.values)

    def details(self) -> str | None:
        """The values as one JSON object (None when the rule has none): the `details` column of rejects/."""
        return json.dumps(self.values, sort_keys=True, default=str) if self.values else None


def _restore(text: str, rule: str, values: dict[str, Any]) -> Reject:
    obj = str.__new__(Reject, text)
    obj.rule, obj.values = rule, values
    return obj


def reason_key(reason: str) -> str:
    """The rule of a reason: its `rule` for a Reject, else the text's first word ('answers_query (...)')."""
    if isinstance(reason, Reject):
        return reason.rule
    return reason.split(" ", 1)[0].split(":", 1)[0]


def reason_columns(reasons: list[str | None]) -> dict[str, list[Any]]:
    """reason (text), rule and details (JSON of the numbers) for a list of reasons; None keeps the row. Plain
    strings are accepted (their rule is the first word). The columns hold plain str, so Arrow takes them."""
    return {
        "reason": [None if r is None else str(r) for r in reasons],
        "rule": [None if r is None else reason_key(r) for r in reasons],
        "details": [r.details() if isinstance(r, Reject) else None for r in reasons],
    }


class Step:
    """A pipeline step: batch in, batch out.

    `reads` names the columns it needs and `writes` those it adds or fills; the runner checks them when the
    pipeline is built (a missing column is one error naming the step and the column, before any batch runs).
    A step that drops rows sets the reason columns (see `reason_columns`); every step may.
    """

    name: str = "step"
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def setup(self) -> None:
        """Open models/clients; called once per worker before the first batch."""

    def close(self) -> None:
        """Release what `setup` opened."""

    def __call__(self, batch: Batch) -> Batch:
        raise NotImplementedError


class Filter(Step):
    """A step that keeps or drops rows; `decide` returns None (keep) or a Reject per row."""

    def decide(self, batch: Batch) -> list[str | None]:
        raise NotImplementedError

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, **reason_columns(self.decide(batch))}


class ColumnError(ValueError):
    """A step reads a column that neither the input nor an earlier step provides."""


def check_columns(steps: list[Step], columns: list[str] | tuple[str, ...]) -> None:
    """Walk the steps over the input's columns: each must find what it reads. Raises ColumnError."""
    have = set(columns) | set(REASON_COLUMNS)
    for step in steps:
        missing = [c for c in step.reads if c not in have]
        if missing:
            raise ColumnError(f"step {step.name!r} reads column {missing[0]!r}, which neither the input nor an "
                              f"earlier step provides (available: {', '.join(sorted(have - set(REASON_COLUMNS)))})")
        have |= set(step.writes)


@dataclass
class StepStats:
    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "in": self.rows_in,
            "out": self.rows_out,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected),
            "seconds": round(self.seconds, 3),
        }


def split_rejects(batch: Batch) -> tuple[Batch, Batch]:
    """Split a batch with a `reason` column into (kept rows, rejected rows)."""
    reasons = batch.get("reason")
    if reasons is None:
        return batch, {}
    keep = [i for i, r in enumerate(reasons) if r is None]
    drop = [i for i, r in enumerate(reasons) if r is not None]
    kept = take({k: v for k, v in batch.items() if k not in REASON_COLUMNS}, keep)
    return kept, take(batch, drop)


# The LLM usage a step's backend accumulates (requests, tokens, failures by kind): counters of LLM steps.
USAGE_COUNTERS = tuple(f"backend.usage.{k}" for k in ("requests", "retries", "failures", "prompt_tokens",
                                                      "completion_tokens", "errors"))


def _resolve(obj: Any, path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    for p in parents:  # attributes, or list positions ("sources.0.examined")
        obj = obj[int(p)] if p.isdigit() and isinstance(obj, (list, tuple)) else getattr(obj, p, None)
    return obj, last


def read_counters(step: Step) -> dict[str, float]:
    """The numbers a step keeps for the run report (its `counters` attribute paths; dicts are flattened to
    `path:key`), so a runner with many workers can add them up on the driver."""
    out: dict[str, float] = {}
    for path in getattr(step, "counters", ()):
        owner, attr = _resolve(step, path)
        value = getattr(owner, attr, None) if owner is not None else None
        if isinstance(value, dict):
            out.update({f"{path}:{k}": v for k, v in value.items()})
        elif isinstance(value, (int, float)):
            out[path] = value
    return out


def add_counters(step: Step, values: dict[str, float]) -> None:
    """Add counter values (from `read_counters` of workers' copies of this step) to this step's own."""
    for key, v in values.items():
        path, _, sub = key.partition(":")
        owner, attr = _resolve(step, path)
        if owner is None:
            continue
        if sub:
            d = getattr(owner, attr)
            d[sub] = d.get(sub, 0) + v
        else:
            setattr(owner, attr, getattr(owner, attr) + v)
