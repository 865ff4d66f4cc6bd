"""validate: text-quality rules, answerability and hardness by scorer scores, and an optional LLM judge.

Scores live on whatever scale the scorer has (cosine, probabilities or logits), so every threshold is
expressed through `difficulty = 1 - (pos - neg) / |pos|`: it equals `neg / pos` for positive scores,
is 1.0 when the negative scores like its positive, and stays meaningful for negative logits.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

import numpy as np

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject, Step, reason_columns
from synthgen.validate.scorer import Scorer


def difficulty(pos: float, neg: float) -> float:
    """1 - (pos - neg) / |pos|: neg/pos for positive scores, and still below 1 under the positive for logits.

    |pos| is floored at 1e-6 so a positive scoring exactly 0 still gives a defined (large) value."""
    return 1.0 - (pos - neg) / max(abs(pos), 1e-6)


class ScoreFilter(Step):
    """Scores (query, positive) and (query, negative), fills the score columns and applies thresholds.

    The reference a negative is compared with is the pair's own positive (`validate.reference: pair`) or the
    *weakest* known positive of its query (`weakest`, as in NV-Retriever's TopK-PercPos and sentence-transformers'
    margins). The hardness floor drops a negative easier than the median of random passages (`random_pool`)
    for its query. Mined rows skip the answerability rules unless `mined_answers_query` says otherwise.
    """

    name = "validate"
    reads = ("query_id", "query", "positive", "negative")
    writes = ("positive_score", "negative_score", "difficulty")
    counters = ("scorer.pairs_scored", "scorer.cache_hits")

    def __init__(self, scorer: Scorer, cfg: ValidateConfig, positives_by_query: dict[str, list[str]] | None = None,
                 random_pool: list[str] | None = None):
        self.scorer, self.cfg = scorer, cfg
        self.weak_below = cfg.weak_positive
        self.positives_by_query = positives_by_query or {}
        self.random_pool = random_pool or []
        from synthgen.validate.scorer import CrossEncoderScorer

        mode = cfg.mined_answers_query
        self.judge_mined = mode == "on" or (mode == "auto" and isinstance(scorer, CrossEncoderScorer))

    def reason(self, pos: float, neg: float, d: float, floor: float | None = None, judge: bool = True) -> Reject | None:
        cfg = self.cfg
        scores = "neg={neg:.4f}, pos={pos:.4f}"
        if not judge:
            return self._hardness(pos, neg, d, floor)
        if cfg.max_score is not None and neg >= cfg.max_score:
            return Reject("answers_query", "absolute: " + scores + " >= max_score={max_score}", neg=neg, pos=pos,
                          max_score=cfg.max_score)
        weak = self.weak_below is not None and pos < self.weak_below
        if weak and cfg.max_score is None:
            # The positive itself barely matches: comparing against it would keep false negatives.
            return Reject("weak_positive", scores + "; positive below {weak_below}, no max_score to fall back on",
                          neg=neg, pos=pos, weak_below=self.weak_below)
        if not weak and d >= cfg.max_relative:
            return Reject("answers_query", "relative: " + scores + ", difficulty={difficulty:.3f} >= {max_relative}",
                          neg=neg, pos=pos, difficulty=d, max_relative=cfg.max_relative)
        return self._hardness(pos, neg, d, floor)

    def _hardness(self, pos: float, neg: float, d: float, floor: float | None) -> Reject | None:
        cfg = self.cfg
        scores = "neg={neg:.4f}, pos={pos:.4f}"
        if cfg.min_score is not None and neg < cfg.min_score:
            return Reject("too_easy", scores + " < min_score={min_score}", neg=neg, pos=pos, min_score=cfg.min_score)
        if cfg.min_relative is not None and d < cfg.min_relative:
            return Reject("too_easy", scores + ", difficulty={difficulty:.3f} < min_relative={min_relative}",
                          neg=neg, pos=pos, difficulty=d, min_relative=cfg.min_relative)
        if floor is not None and neg < floor:
            return Reject("too_easy", scores + " < random passages' q{quantile:g}={floor:.4f}", neg=neg, pos=pos,
                          quantile=cfg.random_floor, floor=floor)
        return None

    def _per_query(self, batch: Batch) -> tuple[dict[str, float], dict[str, float]]:
        """Per query in the batch: the weakest known positive's score, and the random-passage floor."""
        weakest: dict[str, float] = {}
        floors: dict[str, float] = {}
        query_of: dict[str, str] = {}
        known: dict[str, dict[str, None]] = {}  # every known positive of the query, in order
        for qid, query, pos in zip(batch["query_id"], batch["query"], batch["positive"]):
            if qid not in known:
                query_of[qid] = query
                known[qid] = dict.fromkeys(self.positives_by_query.get(qid, []))
            known[qid][pos] = None
        for qid, query in query_of.items():
            own = list(known[qid])
            if self.cfg.reference == "weakest":
                weakest[qid] = min(self.scorer.score([query] * len(own), own))
            if self.cfg.random_floor is not None and self.random_pool:
                draw = random_sample(self.random_pool, self.cfg.random_samples, qid, set(own))
                if draw:
                    floors[qid] = float(np.quantile(self.scorer.score([query] * len(draw), draw),
                                                    self.cfg.random_floor))
        return weakest, floors

    def __call__(self, batch: Batch) -> Batch:
        n = len(batch["query"])
        # One call: a positive repeats across its query's candidates and is scored once (cache).
        scores = self.scorer.score(batch["query"] * 2, batch["positive"] + batch["negative"])
        pos, neg = scores[:n], scores[n:]
        weakest, floors = self._per_query(batch)
        ref = [weakest.get(q, p) for q, p in zip(batch["query_id"], pos)]
        diffs = [difficulty(r, s) for r, s in zip(ref, neg)]
        return {
            **batch,
            "positive_score": pos,
            "negative_score": neg,
            "difficulty": diffs,
            **reason_columns([self.reason(r, s, d, floors.get(q), self.judge_mined or not nid)
                              for r, s, d, q, nid in zip(ref, neg, diffs, batch["query_id"],
                                                         batch.get("negative_id") or [None] * n)]),
        }


def random_sample(pool: list[str], k: int, key: str, exclude: set[str] = frozenset()) -> list[str]:
    """Up to k passages drawn from the pool (never one of `exclude`, the query's own positives), seeded by the
    query id: the same draw in any batch order or worker."""
    rng = np.random.default_rng(zlib.crc32(key.encode("utf-8")))
    picks = rng.choice(len(pool), size=min(k + len(exclude), len(pool)), replace=False)
    return [pool[i] for i in picks if pool[i] not in exclude][:k]


class HardestFilter(Filter):
    """Keeps the k highest-scoring (hardest) surviving negatives of each (query, positive)."""

    name = "top_k"
    reads = ("query_id", "positive_id", "negative_score")

    def __init__(self, k: int):
        self.k = k

    def decide(self, batch: Batch) -> list[str | None]:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(batch["query_id"], batch["positive_id"])):
            groups[key].append(i)
        reasons: list[str | None] = [None] * len(batch["query_id"])
        for rows in groups.values():
            ranked = sorted(rows, key=lambda i: -batch["negative_score"][i])
            for rank, i in enumerate(ranked[self.k:], self.k + 1):
                reasons[i] = Reject("not_top_k", "rank={rank} > k={k}", rank=rank, k=self.k)
        return reasons
