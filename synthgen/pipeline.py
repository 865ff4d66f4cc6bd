"""The one base every step derives from, and the loop that runs steps over batches.

A step is a callable over a batch (dict of lists) with no hidden global state, so the same object runs
here, in `datasets.Dataset.map(step, batched=True)`, or in Ray Data's `map_batches`. Heavy resources
(models, HTTP clients) are opened lazily by `setup()` once per worker and released by `close()`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synthgen.schema import Batch, batch_len, take


def query_batches(rows: Batch, size: int) -> list[Batch]:
    """Split rows into batches of `size` queries, keeping all rows of a query together (dedup and top-k
    work per query)."""
    order: dict[str, list[int]] = {}
    for i, qid in enumerate(rows["query_id"]):
        order.setdefault(qid, []).append(i)
    groups = list(order.values())
    return [take(rows, [i for g in groups[k:k + size] for i in g]) for k in range(0, len(groups), size)]


class Step:
    """A pipeline step: batch in, batch out."""

    name: str = "step"

    def setup(self) -> None:
        """Open models/clients; called once per worker before the first batch."""

    def close(self) -> None:
        """Release what `setup` opened."""

    def __call__(self, batch: Batch) -> Batch:
        raise NotImplementedError


class Filter(Step):
    """A step that keeps or drops rows; `decide` returns None (keep) or a reason per row."""

    def decide(self, batch: Batch) -> list[str | None]:
        raise NotImplementedError

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, "reason": self.decide(batch)}


def reason_key(reason: str) -> str:
    """The rule name of a reason: 'answers_query (neg=0.8 >= 0.76)' -> 'answers_query'."""
    return reason.split(" ", 1)[0].split(":", 1)[0]


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
    kept = take({k: v for k, v in batch.items() if k != "reason"}, keep)
    return kept, take(batch, drop)


class Pipeline:
    """Runs steps in order over each batch; collects rejects and per-step counts and timings."""

    def __init__(self, steps: list[Step]):
        self.steps = steps
        self.stats: dict[str, StepStats] = {s.name: StepStats() for s in steps}

    def __enter__(self) -> "Pipeline":
        for s in self.steps:
            s.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        for s in reversed(self.steps):
            s.close()

    def run_all(self, rows: Batch, batch_queries: int, desc: str) -> tuple[list[Batch], list[tuple[str, Batch]]]:
        """Every query batch through the steps, with a progress bar over queries; (kept, rejects)."""
        from synthgen.progress import progress

        kept: list[Batch] = []
        rejects: list[tuple[str, Batch]] = []
        with progress(len(set(rows["query_id"])), desc, "q") as bar:
            for batch in query_batches(rows, batch_queries):
                out, dropped = self.run_batch(batch)
                kept.append(out)
                rejects.extend(dropped)
                bar.update(len(set(batch["query_id"])))
        return kept, rejects

    def run_batch(self, batch: Batch) -> tuple[Batch, list[tuple[str, Batch]]]:
        """Returns the surviving rows and [(step name, rejected rows), ...]."""
        rejects: list[tuple[str, Batch]] = []
        for step in self.steps:
            st = self.stats[step.name]
            st.rows_in += batch_len(batch)
            t0 = time.perf_counter()
            out = step(batch) if batch_len(batch) else batch
            st.seconds += time.perf_counter() - t0
            batch, dropped = split_rejects(out)
            st.rows_out += batch_len(batch)
            if batch_len(dropped):
                st.rejected.update(reason_key(r) for r in dropped["reason"])
                rejects.append((step.name, dropped))
        return batch, rejects
