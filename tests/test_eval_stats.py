"""`synthgen eval` significance: paired bootstrap and t-test checked against values computed here by other means
(exact enumeration of every bootstrap resample, the t statistic by its formula)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from synthgen.evaluation.stats import (choose_baseline, compare_conditions, mean_std, paired_bootstrap,
                                       paired_ttest)


def _exact_bootstrap_p(a, b) -> float:
    """Every one of the n^n equally likely resamples, in exact decimal arithmetic (ties are ties)."""
    d = [Fraction(str(x)) - Fraction(str(y)) for x, y in zip(a, b)]
    n = len(d)
    observed = sum(d) / n
    extreme = sum(1 for idx in itertools.product(range(n), repeat=n)
                  if abs(sum(d[i] for i in idx) / n - observed) >= abs(observed))
    return extreme / n ** n


def test_identical_scores_mean_no_difference():
    a = [0.1, 0.5, 0.3, 0.9, 0.0]
    boot = paired_bootstrap(a, list(a), resamples=500)
    assert boot["delta"] == 0.0 and boot["p"] == 1.0 and boot["ci95"] == [0.0, 0.0]
    assert paired_ttest(a, list(a)) == {"t": 0.0, "p": 1.0}


def test_constant_shift_is_significant():
    b = [0.1, 0.5, 0.3, 0.9, 0.0, 0.4]
    a = [x + 0.05 for x in b]
    boot = paired_bootstrap(a, b, resamples=2000)
    assert boot["delta"] == pytest.approx(0.05)
    assert boot["p"] == pytest.approx(1 / 2001)  # no resample is as far from 0.05 as 0.05 is from 0
    assert boot["ci95"] == pytest.approx([0.05, 0.05])
    t = paired_ttest(a, b)
    assert t["p"] == 0.0 and t["t"] == math.inf
    assert paired_ttest(b, a)["t"] == -math.inf


@pytest.mark.parametrize("a, b", [
    ([0.2, 0.4, 0.1, 0.7], [0.1, 0.5, 0.1, 0.3]),   # mixed signs
    ([0.3, 0.6, 0.5, 0.2], [0.25, 0.4, 0.55, 0.2]),  # one tie, one loss
    ([0.0, 1.0, 0.5, 0.5], [0.5, 0.0, 0.5, 0.25]),
])
def test_bootstrap_p_matches_exact_enumeration(a, b):
    exact = _exact_bootstrap_p(a, b)
    boot = paired_bootstrap(a, b, resamples=20_000, seed=3)
    # Monte Carlo standard error <= 0.0036 at 20k resamples: 0.015 is > 4 of them.
    assert boot["p"] == pytest.approx(exact, abs=0.015)
    assert boot["delta"] == pytest.approx(sum(a) / 4 - sum(b) / 4)
    assert boot["ci95"][0] <= boot["delta"] <= boot["ci95"][1]
    # Deterministic for a seed.
    assert paired_bootstrap(a, b, resamples=500, seed=1) == paired_bootstrap(a, b, resamples=500, seed=1)


def test_ttest_matches_the_formula():
    scipy_stats = pytest.importorskip("scipy.stats", reason="the paired t-test uses scipy")
    a = [0.31, 0.52, 0.44, 0.12, 0.73, 0.65, 0.28]
    b = [0.30, 0.41, 0.47, 0.10, 0.61, 0.66, 0.20]
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    p = 2 * scipy_stats.t.sf(abs(t), n - 1)  # the t distribution itself, not ttest_rel
    got = paired_ttest(a, b)
    assert got["t"] == pytest.approx(t) and got["p"] == pytest.approx(p)
    assert 0.0 < got["p"] < 1.0


def test_compare_conditions_by_hand():
    # Two seeds x four queries; the condition is 0.1 better on every query in seed-average.
    base = [[0.2, 0.3, 0.4, 0.5], [0.2, 0.3, 0.4, 0.5]]
    runs = [[0.3, 0.4, 0.5, 0.6], [0.32, 0.38, 0.5, 0.6]]
    got = compare_conditions(runs, base, resamples=1000)
    seed_means = [0.45, 0.45]
    assert got["mean"] == pytest.approx(sum(seed_means) / 2) and got["std"] == pytest.approx(0.0, abs=1e-12)
    assert got["delta"] == pytest.approx(0.1) and got["queries"] == 4 and got["seeds"] == 2
    assert got["bootstrap_p"] < 0.01 and got["ttest_p"] < 0.01 and got["beats"] is True
    assert got["bar"] == pytest.approx(0.005)
    # Three queries all better by a lot: the bootstrap says p ~ 0, the t-test does not agree: no win.
    few = compare_conditions([[0.5, 0.9, 0.3]], [[0.2, 0.4, 0.25]], resamples=1000)
    assert few["bootstrap_p"] < 0.01 and few["ttest_p"] > 0.05 and few["beats"] is False
    # A gain below the floor of 0.005 never counts, however consistent.
    small = compare_conditions([[x + 0.004 for x in base[0]]] * 2, base, resamples=1000)
    assert small["delta"] == pytest.approx(0.004) and small["bootstrap_p"] < 0.01 and small["beats"] is False
    # A gain under twice the seed std does not count either.
    noisy = compare_conditions([[x + 0.0 for x in base[0]], [x + 0.2 for x in base[0]]], base, resamples=1000)
    assert noisy["std"] == pytest.approx(math.sqrt(2 * 0.1 ** 2)) and noisy["bar"] == pytest.approx(2 * noisy["std"])
    assert noisy["beats"] is False


def test_mean_std_and_baseline_choice():
    assert mean_std([0.1, 0.3]) == (pytest.approx(0.2), pytest.approx(math.sqrt(0.02)))
    assert mean_std([0.4]) == (0.4, 0.0)
    assert choose_baseline(["zero-shot", "none", "dense", "hybrid"]) == "dense"
    assert choose_baseline(["zero-shot", "none", "hybrid"]) == "none"
    assert choose_baseline(["zero-shot", "bm25"]) == "zero-shot"
    assert choose_baseline(["zero-shot", "bm25"], "bm25") == "bm25"
    with pytest.raises(ValueError, match="baseline 'dense' is not among"):
        choose_baseline(["zero-shot", "bm25"], "dense")
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap([0.1, 0.2], [0.1])
