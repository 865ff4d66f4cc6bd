"""A batch sampler for MultipleNegativesRankingLoss on data with many positives per query (synthgen's outputs,
NFCorpus-style dense judgments): besides keeping duplicate texts apart (as sentence-transformers'
NO_DUPLICATES does), it never puts a row in a batch where its positive or negative is a *known positive* of
another row's query, or where another row's texts are known positives of its own query.

Why: MNRL scores every query against every other row's positive and negative. On NFCorpus's train split 8.8%
of the other rows' positives are judged relevant to a row's query: NO_DUPLICATES batches held 0.54 such false
negatives per row at 30 train queries and 0.82 at 100, which no choice of hard negatives can undo. The known
positives of a query are the positives of every row with the same anchor text, plus any given in `known` (e.g.
qrels of positives not in the rows).

Pass the class itself as `SentenceTransformerTrainingArguments(batch_sampler=NoKnownPositivesBatchSampler)`,
or `functools.partial(NoKnownPositivesBatchSampler, known=...)`; sentence-transformers calls either with the
dataset and its sampler arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

TEXT_COLUMNS_SKIPPED = ("label", "labels", "score", "scores", "dataset_name")  # never texts of a row


class NoKnownPositivesBatchSampler:
    """Batches of distinct texts with no known positive of one row's query among the other rows' texts."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool = False,
                 valid_label_columns: list[str] | None = None, generator: Any = None, seed: int = 0,
                 known: dict[str, set[str]] | None = None, anchor_column: str | None = None,
                 positive_column: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        skipped = set(TEXT_COLUMNS_SKIPPED) | set(valid_label_columns or [])
        columns = [c for c in dataset.column_names if c not in skipped]
        if len(columns) < 2:
            raise ValueError(f"need an anchor and a positive text column, got {dataset.column_names}")
        anchor_column, positive_column = anchor_column or columns[0], positive_column or columns[1]
        self.batch_size, self.drop_last, self.seed, self.epoch = batch_size, drop_last, seed, 0
        self.anchors: list[str] = list(dataset[anchor_column])
        values = [dataset[c] for c in columns]
        # Every text of a row, with nested lists (n-tuple columns) flattened; empty texts are no conflict.
        self.texts: list[frozenset[str]] = [frozenset(t for v in row for t in (v if isinstance(v, list) else [v])
                                                       if isinstance(t, str) and t) for row in zip(*values)]
        self.known: dict[str, set[str]] = {}
        for anchor, positive in zip(self.anchors, dataset[positive_column]):
            self.known.setdefault(anchor, set()).add(positive)
        for anchor, extra in (known or {}).items():
            self.known.setdefault(anchor, set()).update(extra)

    def set_epoch(self, epoch: int) -> None:  # the trainer reshuffles per epoch through this
        self.epoch = epoch

    def __len__(self) -> int:  # full batches' count; conflicts can add short batches (as with NO_DUPLICATES)
        n = len(self.anchors)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _fits(self, index: int, texts: set[str], forbidden: set[str]) -> bool:
        mine = self.texts[index]
        return (mine.isdisjoint(texts) and mine.isdisjoint(forbidden)
                and self.known[self.anchors[index]].isdisjoint(texts))

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.anchors)))
        random.Random(self.seed + self.epoch).shuffle(order)  # seed + epoch decide the order, not `generator`
        while order:
            batch: list[int] = []
            texts: set[str] = set()
            forbidden: set[str] = set()  # known positives of the queries already in the batch
            left: list[int] = []
            for at, index in enumerate(order):
                if len(batch) == self.batch_size:
                    left.extend(order[at:])
                    break
                if self._fits(index, texts, forbidden):
                    batch.append(index)
                    texts |= self.texts[index]
                    forbidden |= self.known[self.anchors[index]]
                else:  # deferred to a later batch, in its shuffled place
                    left.append(index)
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch
            order = left
