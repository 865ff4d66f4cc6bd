"""dedup: exact (normalised) duplicates, near-duplicates among a query's negatives, near-copies of the positive.

Near-duplicate pairs are first ruled out by exact length and character-count bounds (validate/pair_bounds.py:
most pairs of a query cannot reach the threshold); the rest of the batch is scored in ONE rapidfuzz
`process.cpdist` call over all CPU cores. The decisions are those of the plain pairwise loop (tests/test_dedup.py
checks them against one).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from rapidfuzz import fuzz, process

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import Filter, Reject
from synthgen.validate.pair_bounds import char_histograms, copy_pair_candidates, near_pair_candidates

# ASCII bytes that are not letters or digits (underscore included) become spaces; str.isalnum is the same test
# as the regex class [^\W_] it replaces, for every code point (checked exhaustively).
_ASCII_TO_SPACE = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + bytes(range(128, 256))


def normalise(text: str | None) -> str:
    """Lowercase, punctuation and runs of whitespace collapsed: 'Hello,  World!' -> 'hello world'."""
    s = (text or "").lower()
    if s.isascii():  # bytes.translate: ~10x faster than a regex on the common case
        return " ".join(s.encode("ascii").translate(_ASCII_TO_SPACE).decode("ascii").split())
    return " ".join("".join(ch if ch.isalnum() else " " for ch in s).split())


class DedupFilter(Filter):
    """Duplicates among the negatives of a (query, positive) pair, and near-copies of ANY known positive of
    the query (not only the row's own: a copy of a sibling positive is just as much a false negative)."""

    name = "dedup"
    reads = ("query_id", "positive", "negative")

    def __init__(self, cfg: ValidateConfig, positives_by_query: dict[str, list[str]] | None = None):
        self.cfg = cfg
        self.positives_by_query = positives_by_query or {}

    def decide(self, batch: Batch) -> list[str | None]:
        t_near, t_copy = self.cfg.near_duplicate, self.cfg.positive_copy
        reasons: list[str | None] = [None] * len(batch["negative"])
        groups: dict[str, list[int]] = defaultdict(list)
        for i, qid in enumerate(batch["query_id"]):
            groups[qid].append(i)
        memo: dict[str | None, str] = {}  # raw text -> normalised, once per batch
        text_id: dict[str, int] = {}  # distinct normalised texts of the batch (negatives and positives)

        def tid(text: str | None) -> int:
            if text not in memo:
                memo[text] = normalise(text)
            return text_id.setdefault(memo[text], len(text_id))

        neg_ids = np.array([tid(t) for t in batch["negative"]], dtype=np.int64)
        refs = {qid: np.unique([tid(p) for p in self.positives_by_query.get(qid, []) +
                                [batch["positive"][i] for i in rows]]) for qid, rows in groups.items()}
        texts = list(text_id)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        hist = char_histograms(texts)
        # Repeats count within a (query, positive) pair: one passage may be the negative of several
        # positives of a query (as in sentence-transformers' miner), never twice for the same pair.
        pair_col = batch["positive_id"] if batch.get("positive_id") else batch["positive"]
        plans, left, right = [], [], []
        offset = 0
        for qid, rows in groups.items():
            ids = neg_ids[rows]
            codes: dict = {}
            pair_codes = np.array([codes.setdefault(pair_col[i], len(codes)) for i in rows], dtype=np.int64)
            kk, jj = near_pair_candidates(ids, lengths, hist, pair_codes, t_near)
            copy_neg, copy_ref = copy_pair_candidates(np.unique(ids), refs[qid], lengths, hist, t_copy)
            plans.append((rows, ids, pair_codes, kk, jj, copy_neg, offset))
            offset += len(kk) + len(copy_neg)
            left += [ids[kk], copy_neg]
            right += [ids[jj], copy_ref]
        left_ids, right_ids = np.concatenate(left), np.concatenate(right)
        # All pairs of the batch that the bounds leave, in one call over all cores. float64 scores keep the
        # threshold tests exact; near-duplicate reasons show them as float32 (as they always have).
        scores = (process.cpdist([texts[x] for x in left_ids], [texts[x] for x in right_ids], scorer=fuzz.ratio,
                                 score_cutoff=min(t_near, t_copy), dtype=np.float64, workers=-1)
                  if len(left_ids) else np.zeros(0))
        for rows, ids, pair_codes, kk, jj, copy_neg, start in plans:
            near = scores[start:start + len(kk)]
            copy = scores[start + len(kk):start + len(kk) + len(copy_neg)]
            best_copy: dict[int, float] = {}  # negative text -> highest ratio with a known positive, if >= t
            for n in np.flatnonzero(copy >= t_copy):
                best_copy[int(copy_neg[n])] = max(best_copy.get(int(copy_neg[n]), 0.0), float(copy[n]))
            self._keep_pass(rows, ids, pair_codes, kk, jj, near, best_copy, reasons)
        return reasons

    def _keep_pass(self, rows, ids, pair_codes, kk, jj, near_scores, best_copy, reasons) -> None:
        """Rows of one query in order: duplicate of an earlier row of the pair, else a copy of a known
        positive, else a near-duplicate of the first earlier KEPT row of the pair."""
        near: dict[int, list[int]] = defaultdict(list)  # k -> candidate numbers (j ascending) that reached t
        for n in np.flatnonzero(near_scores >= self.cfg.near_duplicate):
            near[int(kk[n])].append(int(n))
        seen: dict[tuple[int, int], int] = {}
        kept = np.zeros(len(rows), dtype=bool)
        for k, i in enumerate(rows):
            key = (int(pair_codes[k]), int(ids[k]))
            if key in seen:
                reasons[i] = Reject("duplicate", "of row {row}", row=rows[seen[key]])
            elif int(ids[k]) in best_copy:
                reasons[i] = Reject("copies_positive", "ratio={ratio:.1f}", ratio=best_copy[int(ids[k])])
            else:
                hit = next((n for n in near.get(k, ()) if kept[jj[n]]), None)
                if hit is not None:
                    reasons[i] = Reject("near_duplicate", "ratio={ratio:.1f} with row {row}",
                                        ratio=float(np.float32(near_scores[hit])), row=rows[int(jj[hit])])
            seen.setdefault(key, k)
            kept[k] = reasons[i] is None


def _length_window(threshold: float) -> float:
    """fuzz.ratio >= t needs shorter/longer >= t / (200 - t): pairs outside that can be skipped."""
    return threshold / (200.0 - threshold)


class CopyIndex:
    """Normalised reference texts sorted by length: `best(text)` compares a text only with the references
    whose length allows a ratio above the threshold (most pairs are skipped without a comparison)."""

    def __init__(self, refs: list[str], threshold: float):
        self.refs = sorted(set(refs), key=len)
        self.lengths = np.array([len(r) for r in self.refs])
        self.threshold, self.window = threshold, _length_window(threshold)

    def best(self, text: str) -> float:
        """The highest fuzz.ratio of `text` with any reference, or 0 when none reaches the threshold."""
        # 1e-9 of slack: a reference exactly at the window's edge (ratio == threshold) must not fall out by rounding.
        a = np.searchsorted(self.lengths, len(text) * self.window * (1 - 1e-9), side="left")
        b = np.searchsorted(self.lengths, len(text) / self.window * (1 + 1e-9) if self.window else np.inf,
                            side="right")
        if a >= b:
            return 0.0
        hit = process.extractOne(text, self.refs[a:b], scorer=fuzz.ratio, score_cutoff=self.threshold)
        return float(hit[1]) if hit else 0.0


class CollisionFilter(Filter):
    """Drops a negative that is a near-duplicate of ANY positive in the dataset.

    Training would push the model away from a right answer. Blocking by length (a ratio above the
    threshold is impossible between texts of very different lengths) keeps `cdist` calls small.
    """

    name = "collision"
    reads = ("positive", "negative")

    def __init__(self, positives: list[str], threshold: float, chunk: int = 2048):
        self.threshold, self.chunk = threshold, chunk
        uniq = sorted({normalise(p) for p in positives if p}, key=len)
        self.positives = uniq
        self.pos_lengths = np.array([len(p) for p in uniq])
        self.exact = set(uniq)

    def decide(self, batch: Batch) -> list[str | None]:
        negs = [normalise(n) for n in batch["negative"]]
        own = [normalise(p) for p in batch["positive"]]
        reasons: list[str | None] = [None] * len(negs)
        window = _length_window(self.threshold)
        order = sorted(range(len(negs)), key=lambda i: len(negs[i]))
        for start in range(0, len(order), self.chunk):
            rows = order[start:start + self.chunk]
            lo = len(negs[rows[0]]) * window * (1 - 1e-9)  # slack as in CopyIndex.best
            hi = len(negs[rows[-1]]) / window * (1 + 1e-9) if window else np.inf
            a, b = np.searchsorted(self.pos_lengths, [lo, hi], side="left")[0], np.searchsorted(
                self.pos_lengths, hi, side="right")
            block = self.positives[a:b]
            if not block:
                continue
            sims = process.cdist([negs[i] for i in rows], block, scorer=fuzz.ratio, dtype=np.float32,
                                 score_cutoff=self.threshold)
            for r, i in enumerate(rows):
                # The negative's own positive is the dedup step's business (copies_positive).
                hits = [j for j in np.flatnonzero(sims[r]) if block[j] != own[i]]
                if hits:
                    best = max(hits, key=lambda j: sims[r, j])
                    reasons[i] = collision_reject(float(sims[r, best]))
        return reasons


def collision_reject(ratio: float) -> Reject:
    """The rejection of a negative whose best match among the other queries' positives has this ratio."""
    return Reject("positive_collision", "ratio={ratio:.1f} with another query's positive", ratio=ratio)
