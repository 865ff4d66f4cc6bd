"""dedup: exact (normalised) duplicates, near-duplicates among a query's negatives, near-copies of the positive.

Comparisons within a query use rapidfuzz's vectorised `process.cdist` (no Python pairwise loops).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
from rapidfuzz import fuzz, process

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str | None) -> str:
    """Lowercase, punctuation and runs of whitespace collapsed: 'Hello,  World!' -> 'hello world'."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


class DedupFilter(Filter):
    """Duplicates among the negatives of a (query, positive) pair, and near-copies of ANY known positive of
    the query (not only the row's own: a copy of a sibling positive is just as much a false negative)."""

    name = "dedup"
    reads = ("query_id", "positive", "negative")

    def __init__(self, cfg: ValidateConfig, positives_by_query: dict[str, list[str]] | None = None):
        self.cfg = cfg
        self.positives_by_query = positives_by_query or {}

    def decide(self, batch: Batch) -> list[str | None]:
        reasons: list[str | None] = [None] * len(batch["negative"])
        groups: dict[str, list[int]] = defaultdict(list)
        for i, qid in enumerate(batch["query_id"]):
            groups[qid].append(i)
        for qid, rows in groups.items():
            negs = [normalise(batch["negative"][i]) for i in rows]
            known = self.positives_by_query.get(qid, []) + [batch["positive"][i] for i in rows]
            copies = CopyIndex([normalise(p) for p in known], self.cfg.positive_copy)
            # Ratios over the distinct texts: a mined passage is dealt to several positives of its query, and
            # cdist is quadratic (a query with 400 positives has thousands of rows but at most range_max texts).
            distinct = list(dict.fromkeys(negs))
            at = {t: u for u, t in enumerate(distinct)}
            best = {t: copies.best(t) for t in distinct}
            to_pos = [best[n] for n in negs]
            ratios = process.cdist(distinct, distinct, scorer=fuzz.ratio, dtype=np.float32,
                                   score_cutoff=self.cfg.near_duplicate) if len(distinct) > 1 else np.zeros((1, 1))
            pos_of = [at[n] for n in negs]
            # Repeats count within a (query, positive) pair: one passage may be the negative of several
            # positives of a query (as in sentence-transformers' miner), never twice for the same pair.
            pair = [batch["positive_id"][i] if batch.get("positive_id") else batch["positive"][i] for i in rows]
            seen: dict[tuple, int] = {}
            kept: dict[object, list[int]] = defaultdict(list)  # pair -> its kept positions within the group
            for k, i in enumerate(rows):
                if (pair[k], negs[k]) in seen:
                    reasons[i] = Reject("duplicate", "of row {row}", row=rows[seen[(pair[k], negs[k])]])
                elif to_pos[k] >= self.cfg.positive_copy:
                    reasons[i] = Reject("copies_positive", "ratio={ratio:.1f}", ratio=float(to_pos[k]))
                else:
                    near = [j for j in kept[pair[k]] if ratios[pos_of[k], pos_of[j]] >= self.cfg.near_duplicate]
                    if near:
                        reasons[i] = Reject("near_duplicate", "ratio={ratio:.1f} with row {row}",
                                            ratio=float(ratios[pos_of[k], pos_of[near[0]]]),
                                            row=rows[near[0]])
                seen.setdefault((pair[k], negs[k]), k)
                if reasons[i] is None:
                    kept[pair[k]].append(k)
        return reasons


def _length_window(threshold: float) -> float:
    """fuzz.ratio >= t needs shorter/longer >= t / (200 - t): pairs outside that can be skipped."""
    return threshold / (200.0 - threshold)


class CopyIndex:
    """Normalised reference texts sorted by length: `best(text)` compares a text only with the references
    whose length allows a ratio above the threshold (most pairs are skipped without a comparison)."""

    def __init__(self, refs: list[str], threshold: float):
        self.refs = sorted(set(refs), key=len)
        self.lengths = np.array([len(r) for r in self.refs])
        self.threshold, self.window = threshold, _length_window(threshold)

    def best(self, text: str) -> float:
        """The highest fuzz.ratio of `text` with any reference, or 0 when none reaches the threshold."""
        a = np.searchsorted(self.lengths, len(text) * self.window, side="left")
        b = np.searchsorted(self.lengths, len(text) / self.window if self.window else np.inf, side="right")
        if a >= b:
            return 0.0
        hit = process.extractOne(text, self.refs[a:b], scorer=fuzz.ratio, score_cutoff=self.threshold)
        return float(hit[1]) if hit else 0.0


class CollisionFilter(Filter):
    """Drops a negative that is a near-duplicate of ANY positive in the dataset.

    Training would push the model away from a right answer. Blocking by length (a ratio above the
    threshold is impossible between texts of very different lengths) keeps `cdist` calls small.
    """

    name = "collision"
    reads = ("positive", "negative")

    def __init__(self, positives: list[str], threshold: float, chunk: int = 2048):
        self.threshold, self.chunk = threshold, chunk
        uniq = sorted({normalise(p) for p in positives if p}, key=len)
        self.positives = uniq
        self.pos_lengths = np.array([len(p) for p in uniq])
        self.exact = set(uniq)

    def decide(self, batch: Batch) -> list[str | None]:
        negs = [normalise(n) for n in batch["negative"]]
        own = [normalise(p) for p in batch["positive"]]
        reasons: list[str | None] = [None] * len(negs)
        window = _length_window(self.threshold)
        order = sorted(range(len(negs)), key=lambda i: len(negs[i]))
        for start in range(0, len(order), self.chunk):
            rows = order[start:start + self.chunk]
            lo = len(negs[rows[0]]) * window
            hi = len(negs[rows[-1]]) / window if window else np.inf
            a, b = np.searchsorted(self.pos_lengths, [lo, hi], side="left")[0], np.searchsorted(
                self.pos_lengths, hi, side="right")
            block = self.positives[a:b]
            if not block:
                continue
            sims = process.cdist([negs[i] for i in rows], block, scorer=fuzz.ratio, dtype=np.float32,
                                 score_cutoff=self.threshold)
            for r, i in enumerate(rows):
                # The negative's own positive is the dedup step's business (copies_positive).
                hits = [j for j in np.flatnonzero(sims[r]) if block[j] != own[i]]
                if hits:
                    best = max(hits, key=lambda j: sims[r, j])
                    reasons[i] = Reject("positive_collision", "ratio={ratio:.1f} with another query's positive",
                                        ratio=float(sims[r, best]))
        return reasons
