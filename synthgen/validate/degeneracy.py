"""Degeneracy gate: LLM text that is not a passage at all (talk about the task, code debris, loops, cut-offs).

Small local models asked for a passage often answer with text *about* the request ("Your edit was not
requested"), fragments of the JSON they were meant to emit, the same phrase over and over, or a sentence
cut off by `max_tokens`. A scorer cannot see any of this (such text can score like a hard negative), so
these rules run before scoring, on LLM-written rows only: corpus passages are human text by construction.
Each rule has its own reason so the audit can count them.
"""

from __future__ import annotations

import re
from collections import Counter

from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject

# The model talking about the task, the edit, the question or its own answer instead of writing a passage.
META_TALK = re.compile(
    r"\b(your (answer|edit|task|request|question|passage|response)|"
    r"(the|this) (original|edited|rewritten|modified|above|following) (passage|version)|"
    r"(the|this) (passage|text) (continues|above|below|has been|is now)|"
    r"(this|the) (question|query) is (answered|not answered|about)|"
    r"(not|was not|wasn't) requested|as requested|"
    r"(this|the|my) (re-?write|revision|edit)\b|"
    r"i (have|'ve) (removed|edited|rewritten|changed|replaced|modified)|"
    r"(single|one|two|three) sentences?,? so\b|"
    r"(keep|kept) (it )?in the same format|"
    r"^\s*(note|explanation|answer|output|response|edit)\s*:)",
    re.IGNORECASE | re.MULTILINE,
)
# Code and structured-output debris: comment markers, braces, JSON-ish tokens, identifiers with digits.
CODE = re.compile(
    r"(^|\n)\s*(//|#|/\*|\./|<\w+>|def |return |import |function\b)|"
    r"[{}]|\bJSON\w*|\b[A-Za-z]+_\d{3,}\b|\b[a-z]+_[a-z0-9_]+\b|\w+\(\)|;\s*($|\n)|==|=>|\[\]",
)
TERMINAL = ('.', '!', '?', '"', "'", ')', '”', '’', ']')


def repetition_share(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one: ~0 for prose, high for generation loops."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return 0.0
    counts = Counter(grams)
    return sum(c - 1 for c in counts.values()) / len(grams)


def prose_share(text: str) -> float:
    """Letters and spaces over all characters: prose sits near 0.95, tables/code/numbers far lower."""
    body = text.strip()
    return sum(c.isalpha() or c.isspace() for c in body) / max(len(body), 1)


def degeneracy_reason(text: str, max_repetition: float = 0.3, min_prose: float = 0.75) -> str | None:
    """The first rule the text breaks, with the evidence; None for a plain passage."""
    body = (text or "").strip()
    if not body:
        return None  # the quality step reports empty text
    if m := META_TALK.search(body):
        return Reject("meta_talk", "{match!r}", match=m.group(0).strip()[:30])
    if m := CODE.search(body):
        return Reject("code_fragment", "{match!r}", match=m.group(0).strip()[:20])
    rep = repetition_share(body)
    if rep > max_repetition:
        return Reject("repetition", "repeated 3-grams {share:.0%} > {max_share:.0%}", share=rep, max_share=max_repetition)
    prose = prose_share(body)
    if prose < min_prose:
        return Reject("non_prose", "letters/spaces {share:.0%} < {min_share:.0%}", share=prose, min_share=min_prose)
    if body.endswith(("...", "…")):
        return Reject("truncated", "ends with an ellipsis")
    if not body.endswith(TERMINAL):
        return Reject("truncated", "ends with {end!r}", end=body[-12:])
    return None


class DegeneracyFilter(Filter):
    """Rejects LLM-written negatives that are not passages; corpus passages (with a `negative_id`) pass."""

    name = "degeneracy"
    reads = ("negative",)

    def __init__(self, max_repetition: float = 0.3, min_prose: float = 0.75):
        self.max_repetition, self.min_prose = max_repetition, min_prose

    def decide(self, batch: Batch) -> list[str | None]:
        ids = batch.get("negative_id") or [None] * len(batch["negative"])
        return [None if nid else degeneracy_reason(text, self.max_repetition, self.min_prose)
                for text, nid in zip(batch["negative"], ids)]
