"""Dense negatives: a sentence-transformers bi-encoder, corpus embeddings cached on disk per model + corpus,
exact top-k over corpus chunks (memory stays at queries x (k + chunk), never queries x corpus)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.core.config import MineConfig
from synthgen.core.progress import progress
from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners.base import Miner

log = logging.getLogger(__name__)


def exact_top_k(queries: np.ndarray, corpus_emb: np.ndarray, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products of each query over the corpus, chunk by chunk: memory Q x (k + chunk).

    `corpus_emb` may be a memory map; only one chunk is read at a time. Returns (indices, scores), best first.
    """
    n_q = queries.shape[0]
    k = min(k, corpus_emb.shape[0])
    best_s = np.empty((n_q, 0), dtype=np.float32)
    best_i = np.empty((n_q, 0), dtype=np.int64)
    for start in range(0, corpus_emb.shape[0], chunk):
        block = np.asarray(corpus_emb[start:start + chunk], dtype=np.float32)
        scores = queries @ block.T
        idx = np.broadcast_to(np.arange(start, start + block.shape[0]), scores.shape)
        cand_s = np.concatenate([best_s, scores], axis=1)
        cand_i = np.concatenate([best_i, idx], axis=1)
        if cand_s.shape[1] > k:
            part = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
            cand_s = np.take_along_axis(cand_s, part, axis=1)
            cand_i = np.take_along_axis(cand_i, part, axis=1)
        best_s, best_i = cand_s, cand_i
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_s, order, axis=1)


def embedding_model_key(model_ref: str) -> dict[str, Any]:
    """What the embedding cache keys on: the name/path plus size and mtime of a local folder's weights."""
    ident: dict[str, Any] = {"model": model_ref}
    p = Path(model_ref)
    if p.is_dir():
        ident["files"] = sorted(
            (f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".json"))
    return ident


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "synthgen" / "embeddings"


class DenseMiner(Miner):
    """Bi-encoder retrieval: cosine similarity of normalised embeddings, exact top-k over corpus chunks."""

    source = "dense"

    def __init__(self, model, model_name: str, model_ref: str, corpus: Corpus, cfg: MineConfig):
        self.st_model, self.model, self.model_ref, self.corpus, self.cfg = model, model_name, model_ref, corpus, cfg
        self.emb: np.ndarray | None = None
        self.cache_file: Path | None = None
        self.cache_hit = False
        self.encode_seconds = 0.0
        self.query_memo: dict[str, np.ndarray] = {}

    def _encode(self, texts: list[str], prompt: str | None = None) -> np.ndarray:
        texts = [prompt + t for t in texts] if prompt else texts
        old = self.st_model.max_seq_length
        self.st_model.max_seq_length = self.cfg.max_seq_length  # the scorer may share this model
        try:
            return np.asarray(self.st_model.encode(
                texts, batch_size=self.cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False), dtype=np.float32)
        finally:
            self.st_model.max_seq_length = old

    def cache_key(self) -> str:
        key = {"identity": embedding_model_key(self.model_ref), "max_seq_length": self.cfg.max_seq_length,
               "normalize": True, "corpus": self.corpus.fingerprint, "docs": len(self.corpus)}
        if self.cfg.passage_prompt:  # keys without a prompt stay as they were
            key["passage_prompt"] = self.cfg.passage_prompt
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]

    def setup(self) -> None:
        if self.emb is not None:
            return
        folder = Path(self.cfg.cache_dir) if self.cfg.cache_dir else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.cache_file = folder / f"{self.cache_key()}.npy"
        if self.cache_file.is_file():
            emb = np.load(self.cache_file, mmap_mode="r")
            if emb.shape[0] == len(self.corpus):
                self.emb, self.cache_hit = emb, True
                log.info("dense: corpus embeddings from cache %s", self.cache_file)
                return
            log.warning("dense: ignoring cache %s (%d rows for %d passages)", self.cache_file, emb.shape[0],
                        len(self.corpus))
        t0 = time.perf_counter()
        # Written batch by batch into a memory-mapped temp file, renamed when complete.
        tmp = self.cache_file.with_name(f".{self.cache_file.stem}.{os.getpid()}.tmp.npy")
        step = self.cfg.batch_size * 8
        # Longest passages first over the WHOLE corpus (as sentence-transformers sorts one encode call): each
        # encode batch holds passages of similar length, so little padding is computed.
        order = np.argsort([-len(t) for t in self.corpus.texts], kind="stable")
        mm = None
        try:
            with progress(len(self.corpus), "dense: encode corpus", "doc") as bar:
                for start in range(0, len(self.corpus), step):
                    rows = order[start:start + step]
                    vecs = self._encode([self.corpus.texts[i] for i in rows], self.cfg.passage_prompt)
                    if mm is None:
                        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                       shape=(len(self.corpus), vecs.shape[1]))
                    mm[rows] = vecs
                    bar.update(len(vecs))
            mm.flush()
            del mm
            os.replace(tmp, self.cache_file)
        finally:
            tmp.unlink(missing_ok=True)  # interrupted: no half-written file is left behind
        meta = {"model": self.model, "model_ref": self.model_ref, "docs": len(self.corpus),
                "corpus_fingerprint": self.corpus.fingerprint, "max_seq_length": self.cfg.max_seq_length}
        self.cache_file.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        self.encode_seconds = time.perf_counter() - t0
        self.emb = np.load(self.cache_file, mmap_mode="r")
        log.info("dense: encoded %d passages in %.1f s -> %s", len(self.corpus), self.encode_seconds, self.cache_file)

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        """Query embeddings, each distinct text encoded once per run (a query repeats across batches and sources)."""
        new = [q for q in dict.fromkeys(queries) if q not in self.query_memo]
        if new:
            self.query_memo.update(zip(new, self._encode(new, self.cfg.query_prompt)))
        return np.stack([self.query_memo[q] for q in queries])

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        self.setup()
        idx, _ = exact_top_k(self.query_vectors(queries), self.emb, depth, self.cfg.chunk_size)
        return idx.tolist()


# --------------------------------------------------------------------------------------------- steps
