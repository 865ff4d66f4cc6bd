"""Random negatives: seeded per query, so the draw does not depend on batch order."""

from __future__ import annotations

import zlib

import numpy as np

from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners.base import Miner


class RandomMiner(Miner):
    source = "random"
    windowed = False

    def __init__(self, corpus: Corpus, seed: int):
        self.corpus, self.seed = corpus, seed

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        n = len(self.corpus)
        out = []
        for qid in query_ids:
            # One generator per query: the draw does not depend on batch order or on other queries.
            rng = np.random.default_rng([self.seed, zlib.crc32(qid.encode("utf-8"))])
            out.append(rng.choice(n, size=min(depth, n), replace=False).tolist())
        return out
