"""validate: text-quality rules, answerability and hardness by scorer scores, and an optional LLM judge.

Scores live on whatever scale the scorer has (cosine, probabilities or logits), so every threshold is
expressed through `difficulty = 1 - (pos - neg) / |pos|`: it equals `neg / pos` for positive scores,
is 1.0 when the negative scores like its positive, and stays meaningful for negative logits. With
`validate.score_origin: random` both scores are first shifted by the query's random floor, so 0 means "like a
random passage" on any scorer's scale.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject, Step, reason_columns
from synthgen.validate.floor import FloorDraw
from synthgen.validate.scorer import Scorer


def difficulty(pos: float, neg: float, origin: float | None = None) -> float:
    """1 - (pos - neg) / |pos - origin|: neg/pos for positive scores and origin 0 (None), and still below 1 under
    the positive for logits; with the query's random floor as origin, 0 means "like a random passage".

    The denominator is floored at 1e-6 so a positive scoring exactly at the origin still gives a defined value."""
    return 1.0 - (pos - neg) / max(abs(pos - (origin or 0.0)), 1e-6)


class ScoreFilter(Step):
    """Scores (query, positive) and (query, negative), fills the score columns and applies thresholds.

    The reference a negative is compared with is the pair's own positive (`validate.reference: pair`) or the
    *weakest* known positive of its query (`weakest`, as in NV-Retriever's TopK-PercPos and sentence-transformers'
    margins). The hardness floor drops a negative easier than the median of its query's scores for random
    passages (`random_pool`; one draw for the whole run, validate/floor.py). Mined rows skip the
    answerability rules unless `mined_answers_query` says otherwise.
    """

    name = "validate"
    reads = ("query_id", "query", "positive", "negative")
    writes = ("positive_score", "negative_score", "difficulty", "score_origin")
    counters = ("scorer.pairs_scored", "scorer.cache_hits")

    def __init__(self, scorer: Scorer, cfg: ValidateConfig, positives_by_query: dict[str, list[str]] | None = None,
                 random_pool: list[str] | None = None):
        self.scorer, self.cfg = scorer, cfg
        self.weak_below = cfg.weak_positive
        self.positives_by_query = positives_by_query or {}
        self.floor = None
        if cfg.random_floor is not None and random_pool:
            most = max((len(v) for v in self.positives_by_query.values()), default=0)
            self.floor = FloorDraw(random_pool, cfg.random_samples, most)
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

    def _reference_pairs(self, batch: Batch) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, str]]:
        """Per query in the batch: the positives its weakest reference is taken over (reference: weakest), its
        floor passages, and its text."""
        query_of: dict[str, str] = {}
        known: dict[str, dict[str, None]] = {}  # every known positive of the query, in order
        for qid, query, pos in zip(batch["query_id"], batch["query"], batch["positive"]):
            if qid not in known:
                query_of[qid] = query
                known[qid] = dict.fromkeys(self.positives_by_query.get(qid, []))
            known[qid][pos] = None
        own = {q: list(k) for q, k in known.items()} if self.cfg.reference == "weakest" else {}
        floor: dict[str, list[str]] = {}
        if self.floor is not None:
            floor = {q: draw for q in known if (draw := self.floor.for_query(set(known[q])))}
        return own, floor, query_of

    def __call__(self, batch: Batch) -> Batch:
        n = len(batch["query"])
        own, floor, query_of = self._reference_pairs(batch)
        # One scorer call for the batch: candidates, the weakest-reference positives and every query's floor
        # passages; repeated pairs (a positive across its query's candidates) are scored once (cache), and a
        # bi-encoder encodes the batch's new texts in one length-sorted pass.
        extra = [(q, p) for group in (own, floor) for q, texts in group.items() for p in texts]
        scores = self.scorer.score(batch["query"] * 2 + [query_of[q] for q, _ in extra],
                                   batch["positive"] + batch["negative"] + [p for _, p in extra])
        pos, neg, rest = scores[:n], scores[n:2 * n], iter(scores[2 * n:])
        weakest = {q: min(next(rest) for _ in texts) for q, texts in own.items()}
        floors = {q: float(np.quantile([next(rest) for _ in texts], self.cfg.random_floor))
                  for q, texts in floor.items()}
        ref = [weakest.get(q, p) for q, p in zip(batch["query_id"], pos)]
        # score_origin random: difficulty on the scale from the query's random passages (0) to its positive (1).
        origin = [floors.get(q) if self.cfg.score_origin == "random" else None for q in batch["query_id"]]
        diffs = [difficulty(r, s, o) for r, s, o in zip(ref, neg, origin)]
        return {
            **batch,
            "positive_score": pos,
            "negative_score": neg,
            "difficulty": diffs,
            "score_origin": origin,
            **reason_columns([self.reason(r, s, d, floors.get(q), self.judge_mined or not nid)
                              for r, s, d, q, nid in zip(ref, neg, diffs, batch["query_id"],
                                                         batch.get("negative_id") or [None] * n)]),
        }


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
