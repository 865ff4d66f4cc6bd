"""The run report every command writes the same way: outputs, then one JSON with counts in/out per step and per
rule, timings, per-strategy acceptance, histograms, the resolved config and package versions; then the card.

Commands add what only they know (input, model, sources, LLM tokens) as `fields`; the shared keys are:
kind, finished_at, seconds, output, counts {kept, rejected, rejected_by_rule, per_strategy, ...}, stages,
histograms, config, versions.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from synthgen.core.schema import Batch
from synthgen.core.step import StepStats, reason_key
from synthgen.io.write import package_versions, write_histograms, write_json, write_run


def per_strategy(kept: list[Batch], rejects: list[tuple[str, Batch]]) -> dict[str, dict[str, Any]]:
    """Kept, rejected (by rule) and acceptance rate per strategy: which strategies are worth their tokens."""
    out: dict[str, dict[str, Any]] = {}

    def entry(strategy: str) -> dict[str, Any]:
        return out.setdefault(strategy, {"kept": 0, "rejected": 0, "rejected_by_reason": {}})

    for b in kept:
        for s in b.get("strategy", []):
            entry(s)["kept"] += 1
    for _, b in rejects:
        for s, r in zip(b.get("strategy", []), b.get("reason", [])):
            e = entry(s)
            e["rejected"] += 1
            e["rejected_by_reason"][reason_key(r)] = e["rejected_by_reason"].get(reason_key(r), 0) + 1
    for e in out.values():
        e["acceptance"] = round(e["kept"] / max(e["kept"] + e["rejected"], 1), 4)
    return out


def rejected_by_rule(rejects: list[tuple[str, Batch]]) -> dict[str, int]:
    """Rejected rows per rule over every step, most frequent first."""
    counts: Counter = Counter()
    for _, b in rejects:
        counts.update(b.get("rule") or [reason_key(r) for r in b.get("reason", [])])
    return dict(counts.most_common())


def finish_run(kind: str, folder: Path, t_start: float, stats: dict[str, StepStats], kept: list[Batch],
               rejects: list[tuple[str, Batch]], config: dict[str, Any], fields: dict[str, Any] | None = None,
               kept_name: str = "triplets", report_name: str = "run.json", sink=None) -> dict[str, Any]:
    """Write kept rows and rejects (from `sink`, a RowSink, when the rows were streamed to disk), the report and
    the dataset card into `folder`; returns the report."""
    from synthgen.io.card import write_card

    fields = dict(fields or {})
    if sink is not None:
        n_kept, n_rejected = sink.finish(folder, kept_name)
    else:
        n_kept, n_rejected = write_run(folder, kept, rejects, kept_name=kept_name)
    report: dict[str, Any] = {
        "kind": kind,
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "seconds": round(time.perf_counter() - t_start, 2),
        "output": str(folder),
        **fields,
        "counts": {**fields.get("counts", {}), "kept": n_kept, "rejected": n_rejected,
                   "rejected_by_rule": rejected_by_rule(rejects), "per_strategy": per_strategy(kept, rejects)},
        "stages": {name: st.as_dict() for name, st in stats.items()},
        "histograms": write_histograms(folder, kept, rejects),
        "config": config,
        "versions": package_versions(),
    }
    write_json(report, folder / report_name)
    write_card(folder, report)
    return report
