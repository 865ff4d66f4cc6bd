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


# meta.json settings that must agree before two runs' seeds of one condition are pooled (seeds must not).
SAME_SETTINGS = ("dataset", "train_pairs", "train_queries", "test_queries", "dev_queries", "dev_split", "corpus_docs",
                 "steps", "epochs", "negatives_per_row", "loss", "batch_sampler", "batch_size", "lr", "max_seq_length",
                 "max_train_queries", "sources", "validator", "teacher", "kl_weight", "mse_weight")
# Where the caches and outputs were is not a setting of the experiment.
PLACES = ("cache_file", "cache_dir", "output_dir")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and key != "sources":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _settings(meta: dict[str, Any]) -> dict[str, Any]:
    """What defines the experiment: the fixed keys, the scorers' names (not what they cost), the resolved config
    but for places."""
    loss = meta.get("loss")
    kl = any(name in str(loss) for name in ("inbatch-kl", "listwise-kl"))
    out = {key: meta.get(key) for key in SAME_SETTINGS}
    if kl and out["kl_weight"] is None:
        out["kl_weight"] = 1.0  # runs from before --kl-weight trained with weight 1
    for key in ("scorer", "teacher_scorer"):
        out[key] = (meta.get(key) or {}).get("name")
    for key, value in _flat(meta.get("config") or {}).items():
        if key.rsplit(".", 1)[-1] not in PLACES:
            out[f"config.{key}"] = value
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LoaderError(f"{path}: unreadable ({err})") from err


def _load_one(folder: str, condition: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    path = _per_query_file(Path(folder))
    stored = _read_json(path)
    out = {}
    for split in SPLITS:
        block = stored.get(split)
        if block and condition in block.get("conditions", {}):
            out[split] = {"query_ids": block["query_ids"], "runs": block["conditions"][condition]}
    if not out:
        known = sorted({c for b in stored.values() if isinstance(b, dict) for c in b.get("conditions", {})})
        raise LoaderError(f"{path}: no condition {condition!r}; it has {', '.join(known) or 'none'}")
    return path, out


def _pool(paths: list[Path], parts: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One condition's seeds from several runs (e.g. seeds 42-44 and, later, 45-46) as if one run had trained them:
    only runs with the same settings, the same scored queries and no seed twice."""
    metas = []
    for path in paths:
        if not (path.parent / "meta.json").is_file():
            raise LoaderError(f"{path.parent / 'meta.json'} is missing: pooling runs needs each run's settings")
        metas.append(_read_json(path.parent / "meta.json"))
    seeds = [s for meta in metas for s in meta.get("seeds", [])]
    if len(seeds) != len(set(seeds)):
        raise LoaderError(f"{', '.join(str(p.parent) for p in paths)}: a seed is in more than one run ({seeds}); "
                          "pooled runs need distinct seeds (synthgen eval --seed-start)")
    settings = [_settings(meta) for meta in metas]
    # config keys a run lacks (a field added later) are not compared; every other setting must agree
    shared = set.intersection(*(set(s) for s in settings))
    for key in sorted(shared):
        if len({json.dumps(s[key], sort_keys=True) for s in settings}) > 1:
            raise LoaderError(f"{paths[0].parent} and the runs pooled with it differ in {key!r} "
                              f"({', '.join(json.dumps(s[key]) for s in settings)}): not the same experiment")
    pooled = {}
    for split in parts[0]:
        if any(split not in part or part[split]["query_ids"] != parts[0][split]["query_ids"] for part in parts):
            raise LoaderError(f"the pooled runs scored different {split} queries: they cannot be one condition")
        pooled[split] = {"query_ids": parts[0][split]["query_ids"],
                         "runs": [run for part in parts for run in part[split]["runs"]]}
    return pooled


def load_condition(spec: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """`RUN:CONDITION` -> (label, {split: {"query_ids": [...], "runs": per seed, the per-query nDCG@10}}).
    `RUN1,RUN2:CONDITION` pools the condition's seeds of several runs (same settings, distinct seeds)."""
    folders, sep, condition = spec.rpartition(":")
    if not sep or not folders or not condition:
        raise LoaderError(f"{spec!r}: expected RUN:CONDITION, e.g. outputs/eval/cranfield:dense")
    loaded = [_load_one(folder, condition) for folder in folders.split(",")]
    paths, parts = [p for p, _ in loaded], [d for _, d in loaded]
    label = ",".join(str(p.parent) for p in paths) + f":{condition}"
    return label, parts[0] if len(parts) == 1 else _pool(paths, parts)


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
