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
    sentences = [split_sentences(p) for p in positives]
    flat_q = [q for q, ss in zip(queries, sentences) for _ in ss]
    flat_s = [s for ss in sentences for s in ss]
    scores = scorer.score(flat_q, flat_s) if flat_s else []
    out: list[str | None] = []
    pos = 0
    for ss in sentences:
        mine = scores[pos:pos + len(ss)]
        pos += len(ss)
        removable = [v for s, v in zip(ss, mine) if len(s.split()) >= min_words]
        if len(ss) < 2 or not removable:
            out.append(None)
            continue
        best = max(removable)
        cut = best - (1.0 - keep_ratio) * abs(best)
        kept = [s for s, v in zip(ss, mine) if v < cut or len(s.split()) < min_words]
        # A title alone is not a passage.
        out.append(" ".join(kept) if any(len(s.split()) >= min_words for s in kept) else None)
    return out
