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


def bounds_allow(a: np.ndarray, b: np.ndarray, lengths: np.ndarray, hist: np.ndarray, threshold: float) -> np.ndarray:
    """Mask over the text pairs (a[n], b[n]) (indices into `lengths` and `hist`): True where neither bound
    rules out fuzz.ratio >= threshold. Worked through in blocks, so memory stays small for any number of pairs."""
    total = lengths[a] + lengths[b]
    keep = _may_reach(np.minimum(lengths[a], lengths[b]), total, threshold)
    for start in range(0, len(a), PAIRS_PER_BLOCK):
        block = np.flatnonzero(keep[start:start + PAIRS_PER_BLOCK]) + start
        if len(block):
            shared = np.minimum(hist[a[block]], hist[b[block]]).sum(axis=1)
            keep[block] = _may_reach(shared, total[block], threshold)
    return keep


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
        kk, jj = np.nonzero((js < ks) & (pair_codes[ks] == pair_codes[js]) & (ids[ks] != ids[js]))
        kk += k0  # np.nonzero is row-major: sorted by k, then j
        keep = bounds_allow(ids[kk], ids[jj], lengths, hist, threshold)
        out_k.append(kk[keep])
        out_j.append(jj[keep])
    if not out_k:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_k), np.concatenate(out_j)


def copy_pair_candidates(neg_ids: np.ndarray, ref_ids: np.ndarray, lengths: np.ndarray, hist: np.ndarray,
                         threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Text pairs (negative, reference) from all of `neg_ids` x `ref_ids` that may reach fuzz.ratio >= threshold."""
    a = np.repeat(neg_ids, len(ref_ids))
    b = np.tile(ref_ids, len(neg_ids))
    keep = bounds_allow(a, b, lengths, hist, threshold)
    return a[keep], b[keep]
