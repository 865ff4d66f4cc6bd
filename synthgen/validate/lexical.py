"""TF-IDF vectors for passage-passage similarity: a lexical view next to the dense one.

Used by `near_positive_lexical`: on NFCorpus, among the candidates the dense `near_positive` rule lets
through, the tf-idf similarity of a candidate to its query's closest known positive separated hidden positives
from true negatives better than the dense features tried (AUC 0.775 dev / 0.768 train; best dense feature
0.734 / 0.758), because unjudged relevant passages share rare terms (drug, nutrient and disease names) with
the judged ones.
"""

from __future__ import annotations

import random

from synthgen.validate.scorer import trim_oldest

# IDF is estimated on at most this many passages (seeded sample): enough for stable weights, bounded cost on
# corpora of millions.
IDF_SAMPLE = 100_000
# Rows kept in memory: a sparse row is a scipy object of ~1 KB, so an unbounded memo grew with every query.
ROW_CACHE_SIZE = 20_000


class TfidfEncoder:
    """`embed(texts)` -> L2-normalised sparse tf-idf rows (sublinear tf, English stop words, terms seen in at
    least two passages), fitted on `pool` when first used."""

    def __init__(self, pool: list[str], seed: int = 0):
        self.pool, self.seed = pool, seed
        self.vectorizer = None
        self._rows: dict[str, object] = {}

    def _fit(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        # Positions are sampled before any text is read: a lazy corpus of millions is never held in memory
        # (reading all 1M texts into a dict first raised peak RSS by ~300 MiB).
        n = len(self.pool)
        picks = sorted(random.Random(self.seed).sample(range(n), IDF_SAMPLE)) if n > IDF_SAMPLE else range(n)
        texts = list(dict.fromkeys(self.pool[i] for i in picks))
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2 if len(texts) > 20 else 1)
        self.vectorizer.fit(texts)

    def embed(self, texts: list[str]):
        import scipy.sparse as sp

        if self.vectorizer is None:
            self._fit()
        trim_oldest(self._rows, ROW_CACHE_SIZE)
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if new:
            for text, row in zip(new, self.vectorizer.transform(new)):
                self._rows[text] = row
        return sp.vstack([self._rows[t] for t in texts]).tocsr()
