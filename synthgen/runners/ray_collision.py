"""The dataset-wide collision check (validate.collision) on Ray as joins, not a list of every positive in each
worker: a negative is rejected when its best fuzz.ratio with another query's positive reaches the threshold.

The Ray runner cuts the steps at the collision step: the steps before it run per batch, their surviving rows
are joined with the dataset's positives (equi-join on a length bucket: a ratio >= t needs shorter/longer >=
t / (200 - t), so two texts that can reach it fall in the same or neighbouring log-length buckets), the ratio of
every pair the join yields is computed, the best per row joined back (`_collision`), and `JoinedCollisions`
turns it into the same Reject the local CollisionFilter makes, as the first step of the rest.
"""

from __future__ import annotations

import math

from synthgen.core.schema import Batch
from synthgen.core.step import Step, reason_columns
from synthgen.validate.dedup import _length_window, collision_reject, normalise

COLLISION = "_collision"


def length_bucket(n: int, window: float) -> int:
    """Texts of lengths a <= b with a / b >= window land in the same or adjacent buckets."""
    if window <= 0:
        return 0
    if window >= 1:
        return n
    return int(math.floor(math.log(max(n, 1)) / math.log(1 / window)))


class JoinedCollisions(Step):
    """The collision step after the join: a row with a `_collision` ratio is rejected as CollisionFilter would."""

    name = "collision"
    reads = ("positive", "negative", COLLISION)

    def __call__(self, batch: Batch) -> Batch:
        ratios = batch[COLLISION]
        out = {k: v for k, v in batch.items() if k != COLLISION}
        return {**out, **reason_columns([None if r is None else collision_reject(float(r)) for r in ratios])}


class NegativeKeys:
    """map_batches: survivors -> (row keys, normalised negative and own positive, length bucket)."""

    def __init__(self, keys: tuple[str, ...], window: float):
        self.keys, self.window = keys, window

    def __call__(self, table) -> Batch:
        rows = table.to_pydict()
        out: dict[str, list] = {k: [] for k in (*self.keys, "_neg", "_own", "_bucket")}
        for i, neg in enumerate(rows["negative"]):
            text = normalise(neg)
            if not text:
                continue  # an empty text reaches no ratio above 0
            for k in self.keys:
                out[k].append(rows[k][i])
            out["_neg"].append(text)
            out["_own"].append(normalise(rows["positive"][i]))
            out["_bucket"].append(length_bucket(len(text), self.window))
        return out


class PairRatios:
    """map_batches: joined (negative, positive) pairs -> the ratio of those that reach the threshold, the row's
    own positive left out (that is the dedup step's copies_positive)."""

    def __init__(self, keys: tuple[str, ...], threshold: float):
        self.keys, self.threshold = keys, threshold

    def __call__(self, table) -> Batch:
        import numpy as np
        from rapidfuzz import fuzz

        rows = table.to_pydict()
        out: dict[str, list] = {k: [] for k in (*self.keys, "_ratio")}
        for i, (neg, pos, own) in enumerate(zip(rows["_neg"], rows["_pos"], rows["_own"])):
            if pos == own:
                continue
            ratio = fuzz.ratio(neg, pos, score_cutoff=self.threshold)
            if ratio > 0:  # below the cutoff rapidfuzz answers 0, as in CollisionFilter's cdist
                for k in self.keys:
                    out[k].append(rows[k][i])
                out["_ratio"].append(float(np.float32(ratio)))  # cdist's float32, as the local rule reads it
        return out


def mark_collisions(survivors, positives: list[str], threshold: float, keys: tuple[str, ...], partitions: int):
    """`survivors` (a Ray dataset with `keys` identifying rows) with a `_collision` column: the best ratio with
    another query's positive (normalised, as CollisionFilter holds them), None where none reaches `threshold`."""
    import pyarrow as pa
    import ray

    window = _length_window(threshold)
    pos_rows = [{"_pos": p, "_bucket": b + d} for p in positives if p
                for b in (length_bucket(len(p), window),) for d in (-1, 0, 1)]
    negatives = survivors.map_batches(NegativeKeys(keys, window), batch_format="pyarrow")
    hits = negatives.join(ray.data.from_items(pos_rows), "inner", partitions, on=("_bucket",)) \
        .map_batches(PairRatios(keys, threshold), batch_format="pyarrow").materialize() if pos_rows else None
    if hits is None or hits.count() == 0:
        return survivors.map_batches(lambda t: t.append_column(COLLISION, pa.nulls(t.num_rows, pa.float64())),
                                     batch_format="pyarrow")
    best = hits.groupby(list(keys)).max("_ratio").rename_columns({"max(_ratio)": COLLISION})
    return survivors.join(best, "left_outer", partitions, on=keys)
