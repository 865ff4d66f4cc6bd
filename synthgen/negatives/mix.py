"""mix: keep the hardest validated negatives of each (query, positive) per source, up to each source's quota.

Two ways to pick (`mine.pick`):
- `own`: each pair takes the hardest survivors among the candidates dealt to it (MixFilter).
- `shared` (default): each pair takes the hardest surviving corpus passage of its *whole query* that fewer than
  `mine.reuse` of the query's positives already took (SharedMix). Dealing spreads a query's ranks over its
  positives, so with `own` a query with 20 positives gives its 20th pair nothing better than rank 20 and a
  rejected candidate costs that pair a stride of 20 ranks; sharing the query's best survivors a few times each
  keeps every pair close to the top. Measured with `synthgen audit` on NFCorpus (README, *Why these defaults*).
  LLM rows (no `negative_id`) are rewrites of their own positive and are always picked per pair.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from synthgen.core.schema import Batch, batch_len, take
from synthgen.core.step import Filter, Reject, Step, reason_columns
from synthgen.validate.score import difficulty


def _score(batch: Batch, i: int) -> float:
    s = batch["negative_score"][i]
    return s if s is not None else -np.inf


def over_quota(batch: Batch, rows: list[int], quota: int, source: str, reasons: list) -> None:
    """Mark all but the `quota` hardest of `rows` (one pair's candidates from one source) as over_quota."""
    ranked = sorted(rows, key=lambda i: -_score(batch, i))
    for rank, i in enumerate(ranked[quota:], quota + 1):
        reasons[i] = Reject("over_quota", "source={source}: rank {rank} > {quota}", source=source, rank=rank, quota=quota)


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
            over_quota(batch, rows, self.quotas.get(source, 0), source, reasons)
        return reasons


class SharedMix(Step):
    """Each (query, positive) takes, per source, the `quotas[source]` hardest surviving corpus passages of its
    query that fewer than `reuse` positives of the query already took (positives in input order; None: no limit,
    so every pair takes its query's hardest survivors, as sentence-transformers gives all positives of a query
    the same negatives).

    A pair may take a passage that was dealt to another positive of its query: the row is then copied with this
    pair's positive, its positive score (scored here when none of its rows survived) and difficulty, after the
    one pair-dependent check (`length_ratio` against this positive). `shared` counts those copies, so
    kept + rejected = candidates + shared. Every other survivor is rejected as over_quota.
    """

    name = "mix"
    reads = ("query_id", "query", "positive_id", "positive", "negative", "source", "negative_score", "positive_score",
             "difficulty")
    counters = ("shared",)  # summed over Ray workers like every step counter

    def __init__(self, quotas: dict[str, int], reuse: int | None, pairs_by_query: dict[str, list[tuple[str, str]]],
                 scorer, length_ratio: tuple[float, float] = (0.0, float("inf")), reference: str = "pair"):
        # pairs_by_query: query id -> [(positive_id, positive)] of every input pair, in input order.
        self.quotas, self.reuse, self.pairs_by_query = quotas, reuse, pairs_by_query
        self.scorer, self.length_ratio, self.reference = scorer, length_ratio, reference
        self.shared: dict[str, int] = defaultdict(int)

    def _positive_scores(self, batch: Batch) -> dict[tuple[str, str], float]:
        """(query id, positive id) -> its positive score: from its surviving rows, else scored now (one call)."""
        known = {(q, p): s for q, p, s in zip(batch["query_id"], batch["positive_id"], batch["positive_score"])
                 if s is not None}
        query_text = dict(zip(batch["query_id"], batch["query"]))
        missing = [(q, pid, pos) for q in query_text for pid, pos in self.pairs_by_query.get(q, [])
                   if (q, pid) not in known]
        if missing:
            scores = self.scorer.score([query_text[q] for q, _, _ in missing], [pos for _, _, pos in missing])
            known.update({(q, pid): float(s) for (q, pid, _), s in zip(missing, scores)})
        return known

    def _fits(self, negative: str, positive: str) -> bool:
        low, high = self.length_ratio
        return low <= len(negative) / max(len(positive), 1) <= high

    def __call__(self, batch: Batch) -> Batch:
        n = batch_len(batch)
        ids = batch.get("negative_id") or [None] * n
        reasons: list = [None] * n
        own: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        shared: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(dict)  # (query, source) -> passage -> rows
        for i, (q, p, src, nid) in enumerate(zip(batch["query_id"], batch["positive_id"], batch["source"], ids)):
            if nid:
                shared[(q, src)].setdefault(nid, []).append(i)
            else:
                own[(q, p, src)].append(i)
        for (_, _, src), rows in own.items():
            over_quota(batch, rows, self.quotas.get(src, 0), src, reasons)
        pos_scores = self._positive_scores(batch) if shared else {}
        limit = "" if self.reuse is None else " (reuse {reuse})"
        picked: set[int] = set()
        copies: list[tuple[int, str, str]] = []  # (row to copy, positive id, positive)
        for (q, src), passages in shared.items():
            quota = self.quotas.get(src, 0)
            order = sorted(passages, key=lambda nid: (-_score(batch, passages[nid][0]), passages[nid][0]))
            used = dict.fromkeys(order, 0)
            for pid, pos in self.pairs_by_query.get(q, []):
                taken = 0
                for nid in order:
                    if taken >= quota:
                        break
                    if self.reuse is not None and used[nid] >= self.reuse:
                        continue
                    mine = next((i for i in passages[nid] if batch["positive_id"][i] == pid), None)
                    if mine is None and not self._fits(batch["negative"][passages[nid][0]], pos):
                        continue
                    used[nid] += 1
                    taken += 1
                    if mine is not None:
                        picked.add(mine)
                    else:
                        copies.append((passages[nid][0], pid, pos))
            for rank, nid in enumerate(order, 1):
                for i in passages[nid]:
                    if i not in picked:
                        reasons[i] = Reject("over_quota", "source={source}: passage rank {rank} of the query, "
                                            "taken by {used} of its positives" + limit, source=src,
                                            rank=rank, used=used[nid], reuse=self.reuse)
        out = {**batch, **reason_columns(reasons)}
        if not copies:
            return out
        extra = take(out, [i for i, _, _ in copies])
        extra["positive_id"] = [pid for _, pid, _ in copies]
        extra["positive"] = [pos for _, _, pos in copies]
        extra["positive_score"] = [pos_scores[(q, pid)] for q, (_, pid, _) in zip(extra["query_id"], copies)]
        if self.reference == "pair":  # with `weakest` the reference is the query's, the same for every pair
            origin = extra.get("score_origin") or [None] * len(copies)
            extra["difficulty"] = [difficulty(p, s, o)
                                   for p, s, o in zip(extra["positive_score"], extra["negative_score"], origin)]
        extra.update(reason_columns([None] * len(copies)))
        for src in extra["source"]:
            self.shared[src] += 1
        return {k: out[k] + extra[k] for k in out}
