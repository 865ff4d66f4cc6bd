"""quality: text rules that need no model (empty, length ratio, markup, meta talk, language)."""

from __future__ import annotations

import re

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject

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


def language_problem(text: str, language: str | None) -> str | None:
    """Cheap check that the text looks like the expected language (only 'en' is known)."""
    if language != "en":
        return None
    letters = [c for c in text if c.isalpha()]
    if letters:
        ascii_share = sum(c.isascii() for c in letters) / len(letters)
        if ascii_share < 0.8:
            return Reject("wrong_language", "latin letters {latin_share:.0%}", latin_share=ascii_share)
    words = re.findall(r"[a-z']+", text.lower())
    if len(words) >= 8 and not EN_STOPWORDS.intersection(words):
        return Reject("wrong_language", "no English function words")
    return None


class QualityFilter(Filter):
    """Cheap text rules, run before any model."""

    name = "quality"
    reads = ("negative", "positive")

    def __init__(self, cfg: ValidateConfig):
        self.cfg = cfg

    def reason(self, neg: str | None, pos: str) -> str | None:
        cfg = self.cfg
        text = (neg or "").strip()
        if not text:
            return Reject("empty")
        if len(text) < cfg.min_chars:
            return Reject("too_short", "chars={chars} < {min_chars}", chars=len(text), min_chars=cfg.min_chars)
        if m := META_TEXT.search(text):
            return Reject("meta_text", "{match!r}", match=m.group(0))
        if m := MARKUP.search(text):
            return Reject("markup", "{match!r}", match=m.group(0)[:12])
        for marker in cfg.leak_markers:
            if marker in text:
                return Reject("leaked_template", "{marker!r}", marker=marker)
        ratio = len(text) / max(len(pos.strip()), 1)
        if ratio < cfg.min_length_ratio:
            return Reject("length_ratio", "neg/pos={ratio:.2f} < {min_ratio}", ratio=ratio, min_ratio=cfg.min_length_ratio)
        if ratio > cfg.max_length_ratio:
            return Reject("length_ratio", "neg/pos={ratio:.2f} > {max_ratio}", ratio=ratio, max_ratio=cfg.max_length_ratio)
        return language_problem(text, cfg.language)

    def decide(self, batch: Batch) -> list[str | None]:
        return [self.reason(n, p) for n, p in zip(batch["negative"], batch["positive"])]
