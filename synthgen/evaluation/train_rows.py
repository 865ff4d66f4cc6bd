"""The rows a source's negatives become for training in `synthgen eval`: the random fill of empty columns, the
qrels' view of what the source chose, and the teacher margins MarginMSE distils, put on the student's scale."""

from __future__ import annotations

from typing import Any

from synthgen.evaluation.eval_args import EvalOptions
from synthgen.evaluation.retrieval import EvalData, fill_negatives, judged_shares
from synthgen.training.teacher import teacher_signals
from synthgen.training.trainer import TEACHER_LOSSES


def prepare_negatives(data: EvalData, opts: EvalOptions, negs: list[list], ids: list[list], common: dict[str, Any],
                       losses: tuple[str, ...], scorer, start, shared: dict[str, Any]):
    """A source's negative columns -> filled columns and, for the teacher losses, `{"margins": ...}`: teacher margins
    on the student's scale (one float per row, or one per column when rows are n-tuples), and for inbatch-kl
    `"inbatch"`: an InBatchTeacher; what the source gave goes into `common`."""
    k = len(negs)
    flat = [n for col in negs for n in col]
    common.update({key: (round(v, 4) if isinstance(v, float) else v) for key, v in judged_shares(
        data, flat, [i for col in ids for i in col], list(data.train["query_id"]) * k).items()})
    # Distinct texts among the source's own negatives: a query's positives may all share one (mine's reuse).
    common["distinct_negatives"] = len({n for n in flat if n})
    filled = 0
    taken: list[set[str]] = [{col[i] for col in ids if col[i]} for i in range(len(ids[0]))]
    for c in range(k):  # column 0 draws exactly what a one-negative run draws
        negs[c], ids[c], n = fill_negatives(data, negs[c], ids[c], opts.fill_seed + c, taken)
        filled += n
        for i, nid in enumerate(ids[c]):
            if nid:
                taken[i].add(nid)
    common["filled"] = filled
    if not set(losses) & set(TEACHER_LOSSES):
        return negs, ids, {}
    out, common["teacher"] = teacher_signals(scorer(), start, list(data.train["query"]), list(data.train["positive"]),
                                             negs, "inbatch-kl" in losses, shared.setdefault("pair_embeddings", {}))
    return negs, ids, out
