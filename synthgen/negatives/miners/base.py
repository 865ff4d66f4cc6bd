"""The miner interface: rank corpus passages for a batch of queries, best first."""

from __future__ import annotations

from synthgen.core.config import MineConfig


class Miner:
    """Ranks corpus passages for queries: `rank(query_ids, queries, depth)` -> corpus indices, best first."""

    source = "miner"
    model: str | None = None
    windowed = True  # the rank window applies (not to random negatives)

    def setup(self) -> None:
        """Build indexes / load embeddings; called once before the first batch."""

    def strategy(self, cfg: MineConfig) -> str:
        return f"{self.source}[{cfg.range_min}:{cfg.range_max}]" if self.windowed else self.source

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        raise NotImplementedError
