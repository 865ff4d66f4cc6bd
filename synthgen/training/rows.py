"""A run's kept rows as training rows: one per (query, positive) with k negative columns, the hardest first; a pair
the run kept fewer negatives for gets random passages, counted apart as `filled`, never credited to the run."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from synthgen.core.errors import LoaderError
from synthgen.core.schema import Batch

MAX_DRAWS = 100  # random draws per empty column before the pool counts as too small


@dataclass
class TrainingRows:
    anchors: list[str]
    positives: list[str]
    negatives: list[list[str]]  # k columns, one entry per row
    from_run: int  # negative cells the run's rows filled
    filled: int  # negative cells filled with a random passage

    def __len__(self) -> int:
        return len(self.anchors)


def training_rows(rows: Batch, k: int, fill_pool: Sequence[str], seed: int = 0,
                  known_positives: Mapping[str, set[str]] | None = None) -> TrainingRows:
    """Group the run's rows by (query_id, positive_id) in first-seen order; each group's k hardest distinct negatives
    (by `negative_score`, unscored last) become its columns, and empty columns are drawn from `fill_pool` (seeded),
    never a positive of the query (in the rows, or in `known_positives`: query_id -> texts the input judges
    relevant) or a negative the row already has."""
    if k < 1:
        raise ValueError(f"negatives per row must be at least 1, got {k}")
    n = len(rows["anchor"])
    scores = rows.get("negative_score") or [None] * n
    groups: dict[tuple, list[int]] = {}
    query_positives: dict[str, set[str]] = {}
    known = known_positives or {}
    for i in range(n):
        qid = rows["query_id"][i]
        groups.setdefault((qid, rows["positive_id"][i]), []).append(i)
        query_positives.setdefault(qid, set(known.get(qid, ()))).add(rows["positive"][i])
    rng = random.Random(seed)
    out = TrainingRows([], [], [[] for _ in range(k)], 0, 0)
    for (qid, _), idx in groups.items():
        ranked = sorted(idx, key=lambda i: -(scores[i] if scores[i] is not None else float("-inf")))
        chosen = list(dict.fromkeys(rows["negative"][i] for i in ranked if rows["negative"][i]))[:k]
        out.from_run += len(chosen)
        while len(chosen) < k:
            chosen.append(_draw(rng, fill_pool, query_positives[qid] | set(chosen)))
            out.filled += 1
        out.anchors.append(rows["anchor"][idx[0]])
        out.positives.append(rows["positive"][idx[0]])
        for c, text in enumerate(chosen):
            out.negatives[c].append(text)
    return out


def _draw(rng: random.Random, pool: Sequence[str], avoid: set[str]) -> str:
    for _ in range(MAX_DRAWS):
        text = pool[rng.randrange(len(pool))] if len(pool) else ""
        if text and text not in avoid:
            return text
    raise LoaderError(f"could not draw a random passage outside a query's positives from {len(pool)} passages: "
                      "give the run a larger corpus or fewer negatives per row")
