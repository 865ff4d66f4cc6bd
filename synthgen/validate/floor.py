"""The hardness floor's random passages: one seeded draw from the pool for the whole run.

Every query is measured against the same passages (minus its own positives), so a bi-encoder encodes them once
per run instead of 16 new passages per query (on a 1M-passage corpus per-query draws almost never repeat; they
were ~3/4 of validation's encoding). The draw depends only on the pool, `samples` and the largest number of
known positives of a query: the same in any batch order, in any Ray worker.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

FLOOR_SEED = zlib.crc32(b"random_floor")


class FloorDraw:
    """`samples` random pool passages for a query, never one of its own positives.

    The draw holds `samples` + a margin (the most positives any known query has, at least `samples`), so a
    query can skip its own positives and still get `samples` passages; only a query whose own positives in the
    draw exceed the margin (positives unknown at construction) gets fewer. Pool texts are read when first needed
    (a lazy corpus reads them from disk)."""

    def __init__(self, pool: Sequence[str], samples: int, max_positives: int = 0):
        self.pool, self.samples = pool, samples
        self.size = min(samples + max(samples, max_positives), len(pool))
        self._texts: list[str] | None = None

    def texts(self) -> list[str]:
        """The whole draw, in draw order (drawn and read on first use)."""
        if self._texts is None:
            rng = np.random.default_rng(FLOOR_SEED)
            picks = rng.choice(len(self.pool), size=self.size, replace=False) if self.size else []
            self._texts = [self.pool[int(i)] for i in picks]
        return self._texts

    def for_query(self, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """The first `samples` passages of the draw that are not in `exclude` (the query's own positives)."""
        out: list[str] = []
        for text in self.texts():
            if text not in exclude:
                out.append(text)
                if len(out) == self.samples:
                    break
        return out
