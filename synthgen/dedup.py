"""dedup: exact (normalised) duplicates, near-duplicates among a query's negatives, near-copies of the positive.

Comparisons within a query use rapidfuzz's vectorised `process.cdist` (no Python pairwise loops).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
from rapidfuzz import fuzz, process

from synthgen.config import ValidateConfig
from synthgen.pipeline import Filter
from synthgen.schema import Batch

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str | None) -> str:
    """Lowercase, punctuation and runs of whitespace collapsed: 'Hello,  World!' -> 'hello world'."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


class DedupFilter(Filter):
    name = "dedup"

    def __init__(self, cfg: ValidateConfig):
        self.cfg = cfg

    def decide(self, batch: Batch) -> list[str | None]:
        reasons: list[str | None] = [None] * len(batch["negative"])
        groups: dict[str, list[int]] = defaultdict(list)
        for i, qid in enumerate(batch["query_id"]):
            groups[qid].append(i)
        for rows in groups.values():
            negs = [normalise(batch["negative"][i]) for i in rows]
            pos = normalise(batch["positive"][rows[0]])
            to_pos = process.cdist(negs, [pos], scorer=fuzz.ratio, dtype=np.float32)[:, 0]
            among = process.cdist(negs, negs, scorer=fuzz.ratio, dtype=np.float32)
            seen: dict[str, int] = {}
            kept: list[int] = []  # positions within the group
            for k, i in enumerate(rows):
                if negs[k] in seen:
                    reasons[i] = f"duplicate (of row {rows[seen[negs[k]]]})"
                elif to_pos[k] >= self.cfg.positive_copy:
                    reasons[i] = f"copies_positive (ratio={to_pos[k]:.1f})"
                else:
                    near = [j for j in kept if among[k, j] >= self.cfg.near_duplicate]
                    if near:
                        reasons[i] = f"near_duplicate (ratio={among[k, near[0]]:.1f} with row {rows[near[0]]})"
                seen.setdefault(negs[k], k)
                if reasons[i] is None:
                    kept.append(k)
        return reasons
