"""Scorer-guided edits: take the answer out of the positive by code, not by asking the model.

Small models answer the query whatever the instruction says. Here the scorer finds the sentences of the
positive that carry the answer (highest score against the query) and removes them; what is left keeps
the positive's topic, vocabulary and style but lost the fact the query asks for.
"""

from __future__ import annotations

import re

from synthgen.validate.scorer import Scorer

# A sentence ends at . ! ? followed by whitespace and an upper-case letter, digit or quote; or at a
# free-standing " . " as in tokenised, lower-cased corpora (Cranfield: "... slipstream . an experimental").
_SENTENCE_END = re.compile(r"(?<=\s[.!?])\s+|(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def remove_answer_sentences(queries: list[str], positives: list[str], scorer: Scorer,
                            keep_ratio: float = 0.98, min_words: int = 5) -> list[str | None]:
    """Per pair: the positive without the sentence(s) scoring highest against the query.

    Only sentences of at least `min_words` words can be removed (a leading title is not the answer).
    A sentence goes when it scores within (1 - keep_ratio) * |best| of the best one (an answer split
    over two near-equal sentences). None when nothing would be left.
    """
    return [v[0] if v else None for v in answer_removed_variants(queries, positives, scorer, 1, keep_ratio,
                                                                 min_words)]


def answer_removed_variants(queries: list[str], positives: list[str], scorer: Scorer, max_variants: int = 3,
                            keep_ratio: float = 0.98, min_words: int = 5) -> list[list[str]]:
    """Per pair: up to `max_variants` edits of the positive, each removing more of its answer.

    The first is `remove_answer_sentences`' (the best sentence and its near-ties); the next ones also remove
    the next-ranked removable sentence, one more each time, while a sentence of `min_words` words is left.
    One candidate may still answer the query (the answer spread over sentences) where a deeper cut does
    not: validation drops those, and the mix keeps the hardest survivor. Empty when nothing can be removed.
    """
    sentences = [split_sentences(p) for p in positives]
    flat_q = [q for q, ss in zip(queries, sentences) for _ in ss]
    flat_s = [s for ss in sentences for s in ss]
    scores = scorer.score(flat_q, flat_s) if flat_s else []
    out: list[list[str]] = []
    pos = 0
    for ss in sentences:
        mine = scores[pos:pos + len(ss)]
        pos += len(ss)
        long_enough = [len(s.split()) >= min_words for s in ss]
        ranked = sorted((i for i in range(len(ss)) if long_enough[i]), key=lambda i: -mine[i])
        if len(ss) < 2 or not ranked:
            out.append([])
            continue
        best = mine[ranked[0]]
        cut = best - (1.0 - keep_ratio) * abs(best)
        gone = {i for i in ranked if mine[i] >= cut}  # the best sentence and its near-ties
        variants: list[str] = []
        for extra in ranked[len(gone) - 1:][:max_variants]:
            gone.add(extra)
            kept = [i for i in range(len(ss)) if i not in gone]
            if not any(long_enough[i] for i in kept):  # a title alone is not a passage
                break
            variants.append(" ".join(ss[i] for i in kept))
        out.append(variants)
    return out
