"""`synthgen compare`: the paired test of `synthgen eval` conditions that ran in different runs.

One eval run tests its conditions against its own baseline. A condition tried later (another loss, another K)
needs the same test against a baseline that already ran: both runs keep every seed's per-query nDCG@10 in
per_query.json, so the paired bootstrap and t-test can be redone without training anything again. The runs
must have scored the same queries in the same order (same data, same split); that is checked, not assumed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthgen.core.errors import LoaderError
from synthgen.evaluation.stats import compare_conditions

SPLITS = ("test", "dev")


def _per_query_file(folder: Path) -> Path:
    """`folder`/per_query.json, or that of its only dataset subfolder (eval writes OUTPUT/<dataset>/)."""
    direct = folder / "per_query.json"
    if direct.is_file():
        return direct
    found = sorted(folder.glob("*/per_query.json")) if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    if found:
        raise LoaderError(f"{folder} holds several eval datasets ({', '.join(p.parent.name for p in found)}): "
                          "name one, e.g. " + str(found[0].parent))
    raise LoaderError(f"no per_query.json in {folder} (nor in a dataset folder under it): is it a `synthgen eval` "
                      "output folder?")


def load_condition(spec: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """`RUN:CONDITION` -> (label, {split: {"query_ids": [...], "runs": per seed, the per-query nDCG@10}})."""
    folder, sep, condition = spec.rpartition(":")
    if not sep or not folder or not condition:
        raise LoaderError(f"{spec!r}: expected RUN:CONDITION, e.g. outputs/eval/cranfield:dense")
    path = _per_query_file(Path(folder))
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LoaderError(f"{path}: unreadable ({err})") from err
    out = {}
    for split in SPLITS:
        block = stored.get(split)
        if block and condition in block.get("conditions", {}):
            out[split] = {"query_ids": block["query_ids"], "runs": block["conditions"][condition]}
    if not out:
        known = sorted({c for b in stored.values() if isinstance(b, dict) for c in b.get("conditions", {})})
        raise LoaderError(f"{path}: no condition {condition!r}; it has {', '.join(known) or 'none'}")
    return f"{path.parent}:{condition}", out


def compare_specs(base: str, others: list[str], splits: tuple[str, ...] = SPLITS) -> list[dict[str, Any]]:
    """One row per (other condition, split both have): `compare_conditions`' statistics plus the labels."""
    base_label, base_data = load_condition(base)
    rows = []
    for spec in others:
        label, data = load_condition(spec)
        shared = [s for s in splits if s in data and s in base_data]
        if not shared:
            raise LoaderError(f"{label} and {base_label} share no split among {', '.join(splits)}")
        for split in shared:
            if data[split]["query_ids"] != base_data[split]["query_ids"]:
                raise LoaderError(f"{label} and {base_label} scored different {split} queries (other data, split "
                                  "or --dev-queries): a paired test needs the same ones")
            stats = compare_conditions(data[split]["runs"], base_data[split]["runs"])
            rows.append({"condition": label, "baseline": base_label, "split": split, **stats})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A markdown table of `compare_specs` rows."""
    head = ("| condition | split | nDCG@10 | baseline | Δ | 95% CI | bootstrap p | t-test p | bar | beats |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [head]
    for r in rows:
        lo, hi = r["bootstrap_ci95"]
        t_p = "–" if r["ttest_p"] is None else f"{r['ttest_p']:.4f}"
        lines.append(f"| {r['condition']} | {r['split']} ({r['queries']} q) | {r['mean']:.4f} ± {r['std']:.4f} | "
                     f"{r['baseline_mean']:.4f} ± {r['baseline_std']:.4f} | {r['delta']:+.4f} | "
                     f"[{lo:+.4f}, {hi:+.4f}] | {r['bootstrap_p']:.4f} | {t_p} | {r['bar']:.4f} | "
                     f"{'yes' if r['beats'] else 'no'} |")
    return "\n".join(lines)
