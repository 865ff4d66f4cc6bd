"""What the hidden positives say about a run: false-negative rate of the kept, catch rate, each rule's precision.

Pure functions over rows (dicts of lists, as the run folder's `triplets/` and `rejects/` hold them), so the
crafted-corpus test can check exact counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import mean
from typing import Any

import numpy as np

from synthgen.core.schema import Batch
from synthgen.core.step import reason_key

# Rejections that pick among rows (quotas, a second copy of a passage another source already proposed), not
# judgements that a row is bad: not counted as catches.
QUOTA_RULES = frozenset({"over_quota", "not_top_k", "duplicate"})


def _rows(batch: Batch) -> list[dict[str, Any]]:
    cols = list(batch)
    return [dict(zip(cols, vals)) for vals in zip(*batch.values())] if cols else []


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(mean(vals), 4) if vals else None


def source_metrics(kept: list[dict], rejected: list[dict], hidden: dict[str, set[str]],
                   pairs: int) -> dict[str, Any]:
    """One group of rows (a source, or all): kept, FN rate, catch rate, yield."""
    def is_fn(r: dict) -> bool:
        return bool(r.get("negative_id")) and r["negative_id"] in hidden.get(r["query_id"], ())

    mined_kept = [r for r in kept if r.get("negative_id")]
    judged_rejects = [r for r in rejected if r.get("negative") and reason_key(r["reason"]) not in QUOTA_RULES]
    # Distinct (query, hidden positive): one passage may be offered to several positives of its query.
    kept_hidden = {(r["query_id"], r["negative_id"]) for r in kept if is_fn(r)}
    rejected_hidden = {(r["query_id"], r["negative_id"]) for r in judged_rejects if is_fn(r)}
    caught = rejected_hidden - kept_hidden
    with_negative = {(r["query_id"], r["positive_id"]) for r in kept}
    return {
        "kept": len(kept),
        "kept_mined": len(mined_kept),
        "kept_false_negatives": sum(map(is_fn, kept)),
        "fn_rate": _rate(sum(map(is_fn, kept)), len(mined_kept)),
        "hidden_in_candidates": len(kept_hidden | rejected_hidden),
        "caught": len(caught),
        "catch_rate": _rate(len(caught), len(kept_hidden | rejected_hidden)),
        "pairs_with_negative": len(with_negative),
        "pair_yield": _rate(len(with_negative), pairs),
        "mean_negative_score": _mean([r.get("negative_score") for r in kept]),
    }


def rule_precision(rejected: list[dict], hidden: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """Per rule: rows it fired on, the mined ones among them, and the share of those that are hidden
    positives (its precision as a false-negative detector: near the base rate means it discards good data)."""
    fired: Counter = Counter()
    mined: Counter = Counter()
    hits: Counter = Counter()
    for r in rejected:
        rule = reason_key(r["reason"])
        fired[rule] += 1
        if r.get("negative_id"):
            mined[rule] += 1
            hits[rule] += r["negative_id"] in hidden.get(r["query_id"], ())
    return {rule: {"fired": fired[rule], "fired_mined": mined[rule], "hidden_positives": hits[rule],
                   "precision": _rate(hits[rule], mined[rule])} for rule in sorted(fired, key=lambda k: -fired[k])}


def reached_rates(kept: list[dict], rejected: list[dict], hidden: dict[str, set[str]],
                  stage_order: list[str]) -> dict[str, float | None]:
    """Per stage: the share of hidden positives among the mined rows that reached it (not rejected by an earlier
    stage). A later rule sees what earlier ones left, so its precision is judged against this, not the overall
    base rate."""
    where = {s: i for i, s in enumerate(stage_order)}
    mined = [(where.get(r.get("stage"), len(where)), r["negative_id"] in hidden.get(r["query_id"], ()))
             for r in kept + rejected if r.get("negative_id")]
    out = {}
    for stage, pos in where.items():
        reach = [h for at, h in mined if at >= pos]
        out[stage] = _rate(sum(reach), len(reach))
    return out


def base_rate(kept: list[dict], rejected: list[dict], hidden: dict[str, set[str]]) -> float | None:
    """Share of mined candidates (every row the sources produced) that are hidden positives."""
    mined = [r for r in kept + rejected if r.get("negative_id")]
    return _rate(sum(r["negative_id"] in hidden.get(r["query_id"], ()) for r in mined), len(mined))


def synthetic_verdict(kept: list[dict], independent: list[float | None],
                      hidden_median: dict[str, float]) -> dict[str, Any]:
    """LLM negatives have no ids: the share the independent model scores at or above the median of that
    query's hidden positives (likely answers) stands in for the false-negative rate."""
    rows = [(r, s) for r, s in zip(kept, independent) if not r.get("negative_id") and s is not None]
    above = sum(s >= hidden_median[r["query_id"]] for r, s in rows if r["query_id"] in hidden_median)
    return {"kept": len(rows), "at_or_above_hidden_median": above, "share": _rate(above, len(rows))}


def degeneracy_counts(rejected: list[dict]) -> dict[str, int]:
    return dict(Counter(reason_key(r["reason"]) for r in rejected if r.get("stage") == "degeneracy"))


def audit_rows(kept_batch: Batch, rejected_batch: Batch, hidden: dict[str, set[str]],
               pairs_per_source: int, stage_order: list[str] | None = None) -> dict[str, Any]:
    """The whole table: overall and per source, rule precision against the base rate (overall, and among the rows
    that reached the rule's stage when `stage_order` is given), degeneracy counts."""
    kept, rejected = _rows(kept_batch), _rows(rejected_batch)
    rules = rule_precision(rejected, hidden)
    if stage_order:
        reached = reached_rates(kept, rejected, hidden, stage_order)
        stage_of = {reason_key(r["reason"]): r.get("stage") for r in rejected}
        for rule, entry in rules.items():
            entry["base_rate_reached"] = reached.get(stage_of.get(rule))
    by_source: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for r in kept:
        by_source[r.get("source") or "unknown"][0].append(r)
    for r in rejected:
        if r.get("source"):
            by_source[r["source"]][1].append(r)
    return {
        "overall": source_metrics(kept, rejected, hidden, pairs_per_source),
        "per_source": {s: source_metrics(k, rj, hidden, pairs_per_source) for s, (k, rj) in sorted(by_source.items())},
        "base_rate": base_rate(kept, rejected, hidden),
        "rules": rules,
        "degeneracy": degeneracy_counts(rejected),
        "negatives_per_query": _rate(len(kept), len({r["query_id"] for r in kept}) or 0),
    }


def _sample(n: int, k: int, seed: int) -> list[int]:
    if not k or n <= k:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist())


def hardness(rows: list[tuple[str, str]], mining, independent, sample: int, seed: int) -> dict[str, float | None]:
    """Mean query-negative score of both models; the independent one on a seeded sample of rows."""
    if not rows:
        return {"hardness_mining": None, "hardness_independent": None}
    qs, ns = [q for q, _ in rows], [n for _, n in rows]
    pick = _sample(len(rows), sample, seed)
    ind = independent.score([qs[i] for i in pick], [ns[i] for i in pick])
    return {"hardness_mining": round(float(np.mean(mining.score(qs, ns))), 4),
            "hardness_independent": round(float(np.mean(ind)), 4), "independent_scored": len(pick)}
