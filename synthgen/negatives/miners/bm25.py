"""BM25 negatives (bm25s scoring): lexical near-misses; passages sharing no term with the query are dropped.

The index is built in bounded memory (bm25_index.py) and, given a cache folder (`synthgen mine` passes
mine.cache_dir, default next to the dense embeddings), kept there for the next run over the same corpus."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners.base import Miner
from synthgen.negatives.miners.bm25_disk import load_retriever
from synthgen.negatives.miners.bm25_index import cached_index

log = logging.getLogger(__name__)


class BM25Miner(Miner):
    source = "bm25"

    def __init__(self, corpus: Corpus, cache_dir: str | Path | None = None):
        self.corpus = corpus
        self.cache_dir = Path(cache_dir) if cache_dir else None  # None: built in a temp folder, not kept
        self.retriever = None
        self.index_seconds = 0.0
        self.index_folder: Path | None = None
        self.cache_hit = False

    @property
    def model(self) -> str:  # type: ignore[override]
        from importlib.metadata import version

        return f"bm25s-{version('bm25s')}"

    def setup(self) -> None:
        if self.retriever is not None:
            return
        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import
        t0 = time.perf_counter()
        if self.cache_dir is None:
            tmp = Path(tempfile.mkdtemp(prefix="synthgen-bm25-"))
            try:
                folder, _ = cached_index(self.corpus.texts, self.corpus.fingerprint, tmp)
                self.retriever = load_retriever(folder, on_disk=False)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            self.index_folder, self.cache_hit = cached_index(self.corpus.texts, self.corpus.fingerprint,
                                                             self.cache_dir)
            self.retriever = load_retriever(self.index_folder)
        self.index_seconds = time.perf_counter() - t0
        log.info("bm25: index %s %s in %.1f s", self.index_folder, "loaded" if self.cache_hit else "built",
                 self.index_seconds)

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        import bm25s

        self.setup()
        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        docs, scores = self.retriever.retrieve(tokens, k=min(depth, len(self.corpus)), show_progress=False)
        # A passage sharing no term with the query scores 0: that is not a BM25 negative, drop it.
        return [[int(d) for d, s in zip(drow, srow) if s > 0] for drow, srow in zip(docs, scores)]
