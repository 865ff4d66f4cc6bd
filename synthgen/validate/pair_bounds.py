"""Exact bounds that rule out text pairs before any fuzz.ratio call (dedup's near-duplicate rule).

fuzz.ratio(a, b) = 200 * LCS(a, b) / (len(a) + len(b)), LCS being the longest common subsequence in code
points. Two upper bounds on LCS are cheap to compute for many pairs at once:

- length: LCS <= min(len(a), len(b));
- character counts: LCS <= sum over characters c of min(count_a(c), count_b(c)). Counting code points modulo
  `BUCKETS` only merges counts, which can only raise that sum, so the bound stays valid.

A pair whose bound is below the threshold cannot reach it and is skipped; every other pair is scored for real.
Both bounds carry a little slack for float rounding, so they never skip a pair that rapidfuzz would score >= t.
"""

from __future__ import annotations

import numpy as np

BUCKETS = 128
# Pairs handled at once: bounds memory ~ PAIRS_PER_BLOCK x BUCKETS x 4 bytes (32 MiB).
PAIRS_PER_BLOCK = 1 << 16


def char_histograms(texts: list[str]) -> np.ndarray:
    """(len(texts), BUCKETS) int32: how often each code point (modulo BUCKETS) occurs in each text."""
    if not texts:
        return np.zeros((0, BUCKETS), np.int32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    joined = "".join(texts)
    if joined.isascii():
        codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).astype(np.int64)
    else:
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64) % BUCKETS
    codes += np.repeat(np.arange(len(texts), dtype=np.int64) * BUCKETS, lengths)
    counts = np.bincount(codes, minlength=len(texts) * BUCKETS)
    return counts.reshape(len(texts), BUCKETS).astype(np.int32)


def _may_reach(lcs_bound: np.ndarray, total: np.ndarray, threshold: float) -> np.ndarray:
    """True where 200 * bound / total could still be >= threshold (relative + absolute slack for rounding)."""
    return 200.0 * lcs_bound * (1 + 1e-9) + 1e-6 >= threshold * total


def near_pair_candidates(ids: np.ndarray, lengths: np.ndarray, hist: np.ndarray, pair_codes: np.ndarray,
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions (k, j), j < k, of one query's rows that may be near-duplicates: same pair code, different
    texts (`ids` index `lengths` and `hist`), and both bounds allow fuzz.ratio >= threshold.

    Sorted by k, then j (the order the sequential keep pass reads them in).
    """
    n = len(ids)
    out_k: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    step = max(1, PAIRS_PER_BLOCK // max(n, 1))  # rows k per block, so a block has <= ~PAIRS_PER_BLOCK pairs
    for k0 in range(1, n, step):
        k1 = min(n, k0 + step)
        ks = np.arange(k0, k1)[:, None]
        js = np.arange(k1)[None, :]
        la, lb = lengths[ids[ks]], lengths[ids[js]]
        mask = (js < ks) & (pair_codes[ks] == pair_codes[js]) & (ids[ks] != ids[js])
        mask &= _may_reach(np.minimum(la, lb), la + lb, threshold)
        kk, jj = np.nonzero(mask)  # row-major: sorted by k, then j
        kk += k0
        if len(kk):
            a, b = ids[kk], ids[jj]
            shared = np.minimum(hist[a], hist[b]).sum(axis=1)
            keep = _may_reach(shared, lengths[a] + lengths[b], threshold)
            out_k.append(kk[keep])
            out_j.append(jj[keep])
    if not out_k:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_k), np.concatenate(out_j)
