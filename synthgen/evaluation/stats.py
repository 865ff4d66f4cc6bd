"""Significance for `synthgen eval`: a condition against a baseline, paired over the same test queries.

Seeds measure training noise (mean ± std of the per-seed nDCG@10); the paired tests measure whether the
difference holds across queries. Both tests run on the seed-averaged per-query nDCG@10 of the two
conditions: a paired bootstrap over queries (always) and a paired t-test (when scipy is installed).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

ALPHA = 0.05
MIN_GAIN = 0.005  # the floor for a win, next to 2 x the seed std
RESAMPLES = 10_000
_TIE = 1e-12  # float slack, so a resampled mean equal to the observed one counts as "as extreme"


def _diffs(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise ValueError(f"paired test needs two equally long, non-empty score lists (got {x.shape} and {y.shape})")
    return x - y


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES,
                     seed: int = 0) -> dict[str, float]:
    """Two-sided paired bootstrap of mean(a - b) over queries.

    p: the share of resampled means at least as far from the observed mean as the observed mean is from 0
    (the resampling distribution shifted to the null of no difference), with the usual +1 so p > 0;
    ci95: the 2.5 / 97.5 percentiles of the resampled means.
    """
    d = _diffs(a, b)
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(d))  # bounded memory for long query lists
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        means[start:start + n] = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    extreme = int(np.count_nonzero(np.abs(means - observed) >= abs(observed) - _TIE))
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"delta": observed, "p": (extreme + 1) / (resamples + 1), "ci95": [float(lo), float(hi)],
            "resamples": resamples}


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """scipy's paired t-test; {"p": None, "note": ...} without scipy. Identical differences (zero variance)
    give p = 1 for no difference and p = 0 for a constant shift, where scipy would return nan."""
    d = _diffs(a, b)
    if float(np.ptp(d)) <= _TIE:  # float noise of a constant shift is not variance
        return {"t": 0.0 if d[0] == 0 else math.copysign(math.inf, d[0]), "p": 1.0 if d[0] == 0 else 0.0}
    try:
        from scipy.stats import ttest_rel
    except ImportError:
        return {"t": None, "p": None, "note": "scipy not installed"}
    res = ttest_rel(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return {"t": float(res.statistic), "p": float(res.pvalue)}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def compare_conditions(runs: Sequence[Sequence[float]], base_runs: Sequence[Sequence[float]],
                       resamples: int = RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """`runs` / `base_runs`: per seed, the per-query nDCG@10 (queries in the same order in all of them).

    `beats`: delta >= max(MIN_GAIN, 2 x the larger seed std) and p < ALPHA in the bootstrap and, when scipy is
    there, in the t-test too (the bootstrap alone is too liberal on a handful of queries).
    """
    mean, std = mean_std([float(np.mean(r)) for r in runs])
    base_mean, base_std = mean_std([float(np.mean(r)) for r in base_runs])
    per_query = np.mean(np.asarray(runs, dtype=float), axis=0)
    base_per_query = np.mean(np.asarray(base_runs, dtype=float), axis=0)
    boot = paired_bootstrap(per_query, base_per_query, resamples, seed)
    ttest = paired_ttest(per_query, base_per_query)
    delta = mean - base_mean
    bar = max(MIN_GAIN, 2.0 * max(std, base_std))
    return {"mean": mean, "std": std, "seeds": len(runs), "baseline_mean": base_mean, "baseline_std": base_std,
            "baseline_seeds": len(base_runs), "delta": delta, "queries": len(per_query),
            "bootstrap_p": boot["p"], "bootstrap_ci95": boot["ci95"], "resamples": resamples,
            "ttest_t": ttest["t"], "ttest_p": ttest["p"], "bar": bar,
            "beats": bool(delta >= bar and boot["p"] < ALPHA and (ttest["p"] is None or ttest["p"] < ALPHA))}


def choose_baseline(names: Sequence[str], wanted: str | None = None) -> str:
    """The baseline every condition is tested against: `wanted`, else dense, else in-batch, else zero-shot."""
    if wanted is not None:
        if wanted not in names:
            raise ValueError(f"baseline {wanted!r} is not among the conditions run ({', '.join(names)})")
        return wanted
    return next(n for n in ("dense", "none", "zero-shot") if n in names)
