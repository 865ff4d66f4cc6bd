"""near_positive: a mined negative that looks like one of its query's known positives is probably an unjudged one.

Measured on NFCorpus (dense judgments, half of each query's positives hidden): a candidate's similarity to its
query's closest known positive separates hidden positives from true negatives far better than its score for
the query (AUC 0.89 vs 0.71 with all-MiniLM-L6-v2), because a query's relevant passages resemble each other.
The threshold is the query's own: the `quantile` of its known positives' similarity to their nearest other
known positive, so no absolute number has to fit every model and corpus. A query with one known positive
has no such statistic and falls back to `fallback` (off when empty).

Only mined rows (with a corpus `negative_id`) are checked: LLM negatives are rewrites of the positive, close
to it by construction; the scorer and the degeneracy gate judge those.
"""

from __future__ import annotations

import numpy as np

from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject


def similarities(a, b) -> np.ndarray:
    """a @ b.T as a dense array, for dense embeddings and sparse tf-idf rows alike."""
    sims = a @ b.T
    return np.asarray(sims.todense()) if hasattr(sims, "todense") else np.asarray(sims)


def own_threshold(pos_emb, quantile: float) -> float | None:
    """quantile of each known positive's cosine to its nearest other known positive (None with < 2)."""
    if pos_emb.shape[0] < 2:
        return None
    sims = similarities(pos_emb, pos_emb).astype(float)
    np.fill_diagonal(sims, -np.inf)
    return float(np.quantile(sims.max(axis=1), quantile))


class NearPositiveFilter(Filter):
    name = "near_positive"
    reads = ("query_id", "positive", "negative")

    def __init__(self, encoder, positives_by_query: dict[str, list[str]], quantile: float,
                 fallback: float | None = None, rule: str = "near_positive"):
        # encoder: anything with `embed(texts) -> normalised vectors` (BiEncoderScorer, TfidfEncoder), opened by
        # its owner; rule: the step's name and reject reason (near_positive, near_positive_lexical).
        self.encoder, self.positives_by_query = encoder, positives_by_query
        self.quantile, self.fallback, self.name = quantile, fallback, rule

    def decide(self, batch: Batch) -> list[str | None]:
        reasons: list[str | None] = [None] * len(batch["negative"])
        ids = batch.get("negative_id") or [None] * len(reasons)
        rows_by_query: dict[str, list[int]] = {}
        for i, (qid, nid) in enumerate(zip(batch["query_id"], ids)):
            if nid:
                rows_by_query.setdefault(qid, []).append(i)
        known_by_query = {qid: list(dict.fromkeys(self.positives_by_query.get(qid, []) +
                                                  [batch["positive"][i] for i in rows]))
                          for qid, rows in rows_by_query.items()}
        # One encoder call for the whole batch (a bi-encoder encodes it in one length-sorted pass).
        texts = list(dict.fromkeys([t for known in known_by_query.values() for t in known] +
                                   [batch["negative"][i] for rows in rows_by_query.values() for i in rows]))
        at = {t: i for i, t in enumerate(texts)}
        emb = self.encoder.embed(texts) if texts else None
        for qid, rows in rows_by_query.items():
            pos_emb = emb[[at[t] for t in known_by_query[qid]]]
            threshold = own_threshold(pos_emb, self.quantile)
            how = f"q{self.quantile:g} of the positives' nearest-positive similarity"
            if threshold is None:
                threshold, how = self.fallback, "fallback (one known positive)"
            if threshold is None:
                continue
            sims = similarities(emb[[at[batch["negative"][i]] for i in rows]], pos_emb)
            for i, row_sims in zip(rows, sims):
                best = float(row_sims.max())
                if best >= threshold:
                    reasons[i] = Reject(self.name, "sim={sim:.3f} to a known positive >= {threshold:.3f}, {how}",
                                        sim=float(best), threshold=float(threshold), how=how)
        return reasons
