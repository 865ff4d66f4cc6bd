"""BM25 negatives (bm25s): lexical near-misses; passages sharing no term with the query are dropped."""

from __future__ import annotations

import logging
import time

from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners.base import Miner


class BM25Miner(Miner):
    source = "bm25"

    def __init__(self, corpus: Corpus, retriever=None):
        self.corpus = corpus
        self.retriever = retriever  # an index built elsewhere (a Ray worker gets the driver's), else setup() builds it
        self.index_seconds = 0.0

    @property
    def model(self) -> str:  # type: ignore[override]
        from importlib.metadata import version

        return f"bm25s-{version('bm25s')}"

    def setup(self) -> None:
        if self.retriever is not None:
            return
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import
        t0 = time.perf_counter()
        tokens = bm25s.tokenize(self.corpus.texts, stopwords="en", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self.index_seconds = time.perf_counter() - t0

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        import bm25s

        self.setup()
        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        docs, scores = self.retriever.retrieve(tokens, k=min(depth, len(self.corpus)), show_progress=False)
        # A passage sharing no term with the query scores 0: that is not a BM25 negative, drop it.
        return [[int(d) for d, s in zip(drow, srow) if s > 0] for drow, srow in zip(docs, scores)]
