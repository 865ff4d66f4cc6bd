"""mix: keep the hardest validated negatives of each (query, positive) per source, up to each source's quota."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from synthgen.core.schema import Batch, batch_len
from synthgen.core.step import Filter, Reject


class MixFilter(Filter):
    """Keeps the `quotas[source]` hardest validated negatives of each (query, positive) per source."""

    name = "mix"
    reads = ("query_id", "positive_id", "source", "negative_score")

    def __init__(self, quotas: dict[str, int]):
        self.quotas = quotas

    def decide(self, batch: Batch) -> list[str | None]:
        groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(batch["query_id"], batch["positive_id"], batch["source"])):
            groups[key].append(i)
        reasons: list[str | None] = [None] * batch_len(batch)
        for (_, _, source), rows in groups.items():
            quota = self.quotas.get(source, 0)
            score = batch["negative_score"]
            ranked = sorted(rows, key=lambda i: -(score[i] if score[i] is not None else -np.inf))
            for rank, i in enumerate(ranked[quota:], quota + 1):
                reasons[i] = Reject("over_quota", "source={source}: rank {rank} > {quota}", source=source, rank=rank, quota=quota)
        return reasons
