"""validate: text-quality rules, answerability and hardness by scorer scores, and an optional LLM judge.

Scores live on whatever scale the scorer has (cosine, probabilities or logits), so every threshold is
expressed through `difficulty = 1 - (pos - neg) / |pos|`: it equals `neg / pos` for positive scores,
is 1.0 when the negative scores like its positive, and stays meaningful for negative logits.
"""

from __future__ import annotations

import re
from collections import defaultdict

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


def difficulty(pos: float, neg: float) -> float | None:
    """1 - (pos - neg) / |pos|: neg/pos for positive scores, and still below 1 under the positive for logits."""
    return None if pos == 0 else 1.0 - (pos - neg) / abs(pos)


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
    """Scores (query, positive) and (query, negative), fills the score columns and applies thresholds."""

    name = "validate"

    def __init__(self, scorer: Scorer, cfg: ValidateConfig):
        self.scorer, self.cfg = scorer, cfg
        self.weak_below = cfg.weak_positive if cfg.weak_positive is not None else scorer.default_weak_positive

    def reason(self, pos: float, neg: float, d: float | None) -> str | None:
        cfg = self.cfg
        scores = f"neg={neg:.4f}, pos={pos:.4f}"
        if cfg.max_score is not None and neg >= cfg.max_score:
            return f"answers_query (absolute: {scores} >= max_score={cfg.max_score})"
        weak = self.weak_below is not None and pos < self.weak_below
        if weak and cfg.max_score is None:
            # The positive itself barely matches: comparing against it would keep false negatives.
            return f"weak_positive ({scores}; positive below {self.weak_below}, no max_score to fall back on)"
        if not weak and d is not None and d >= cfg.max_relative:
            return f"answers_query (relative: {scores}, difficulty={d:.3f} >= {cfg.max_relative})"
        if cfg.min_score is not None and neg < cfg.min_score:
            return f"too_easy ({scores} < min_score={cfg.min_score})"
        if cfg.min_relative is not None and d is not None and d < cfg.min_relative:
            return f"too_easy ({scores}, difficulty={d:.3f} < min_relative={cfg.min_relative})"
        return None

    def __call__(self, batch: Batch) -> Batch:
        n = len(batch["query"])
        # One call: a positive repeats across its query's candidates and is scored once (cache).
        scores = self.scorer.score(batch["query"] * 2, batch["positive"] + batch["negative"])
        pos, neg = scores[:n], scores[n:]
        diffs = [difficulty(p, s) for p, s in zip(pos, neg)]
        return {
            **batch,
            "positive_score": pos,
            "negative_score": neg,
            "difficulty": diffs,
            "reason": [self.reason(p, s, d) for p, s, d in zip(pos, neg, diffs)],
        }


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


def validation_steps(cfg: ValidateConfig, scorer: Scorer, all_positives: list[str],
                     judge_backend=None, judge_template=None, cache=None) -> list[Step]:
    """The validation stage as steps, cheapest first; `generate` and `synthgen validate` both use this."""
    from synthgen.dedup import CollisionFilter, DedupFilter

    steps: list[Step] = [QualityFilter(cfg), DedupFilter(cfg)]
    if cfg.collision is not None:
        steps.append(CollisionFilter(all_positives, cfg.collision))
    steps.append(ScoreFilter(scorer, cfg))
    if cfg.judge.enabled:
        if judge_backend is None or judge_template is None:
            raise ValueError("validate.judge.enabled needs an LLM backend and a 'judge' template")
        steps.append(JudgeFilter(judge_backend, judge_template, cfg, cache))
    if cfg.top_k is not None:
        steps.append(HardestFilter(cfg.top_k))
    return steps
