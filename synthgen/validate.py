"""validate: drop candidates that are empty or meta-text, and those that answer the query.

A candidate that scores like its positive probably answers the query (a false negative). The relative
threshold is `pos - (1 - max_relative) * |pos|`: `max_relative * pos` for positive scores, and still
"a little below the positive" when a scorer returns negative logits.
"""

from __future__ import annotations

import re

from synthgen.config import ValidateConfig
from synthgen.pipeline import Filter
from synthgen.schema import Batch
from synthgen.scorer import Scorer

# Text a model adds about itself or the task instead of writing a passage.
META_TEXT = re.compile(
    r"\b(as an ai|i cannot|i can't|i'm sorry|here (is|are) (a|an|the|some|\d+)\b|"
    r"(this|the) passage (does not|doesn't) answer|json)\b",
    re.IGNORECASE,
)


def relative_threshold(pos: float, max_relative: float) -> float:
    return pos - (1.0 - max_relative) * abs(pos)


class QualityFilter(Filter):
    """Cheap text rules first, before any model runs."""

    name = "quality"

    def __init__(self, cfg: ValidateConfig):
        self.cfg = cfg

    def decide(self, batch: Batch) -> list[str | None]:
        reasons: list[str | None] = []
        for neg in batch["negative"]:
            text = (neg or "").strip()
            if not text:
                reasons.append("empty")
            elif len(text) < self.cfg.min_chars:
                reasons.append(f"too_short (chars={len(text)} < {self.cfg.min_chars})")
            elif m := META_TEXT.search(text):
                reasons.append(f"meta_text ({m.group(0)!r})")
            else:
                reasons.append(None)
        return reasons


class ScoreFilter(Filter):
    """Scores (query, positive) and (query, negative); fills the score columns and applies thresholds."""

    name = "validate"

    def __init__(self, scorer: Scorer, cfg: ValidateConfig):
        self.scorer, self.cfg = scorer, cfg

    def decide(self, batch: Batch) -> list[str | None]:
        raise NotImplementedError("ScoreFilter fills columns: call it on a batch")

    def __call__(self, batch: Batch) -> Batch:
        n = len(batch["query"])
        # One call: positives repeat across a query's candidates and are scored once (cache).
        scores = self.scorer.score(batch["query"] * 2, batch["positive"] + batch["negative"])
        pos, neg = scores[:n], scores[n:]
        reasons: list[str | None] = []
        for p, s in zip(pos, neg):
            thr = relative_threshold(p, self.cfg.max_relative)
            if s >= thr:
                reasons.append(f"answers_query (neg={s:.4f} >= thr={thr:.4f}, pos={p:.4f})")
            elif self.cfg.min_score is not None and s < self.cfg.min_score:
                reasons.append(f"too_easy (neg={s:.4f} < min_score={self.cfg.min_score})")
            else:
                reasons.append(None)
        return {
            **batch,
            "positive_score": pos,
            "negative_score": neg,
            "difficulty": [s / p if p else None for p, s in zip(pos, neg)],
            "reason": reasons,
        }
