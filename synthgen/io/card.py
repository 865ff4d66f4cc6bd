"""card: the dataset card (README.md with YAML metadata) written beside every run's datasets.

`write_card(folder, run_info)` takes what the command recorded (`run.json` of `generate` / `mine`, or
`stats.json` of `validate`) and renders sources, generator model, prompts and their hashes, thresholds,
counts per stage, per strategy and per source, the mining checks and the histograms. Counts that
`run_info` lacks (per source for `generate` and `validate`) are read from the datasets in the folder.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from synthgen.io.card_meta import (configs_section, metadata, reproduction_section, source_dataset, source_link,
                                   trainer_snippets)
from synthgen.io.hub_configs import CONFIGS

log = logging.getLogger(__name__)

KEPT_FOLDERS = ("triplets", "kept")
# The validation thresholds shown in the card, in this order (keys of the `validate:` config section).
THRESHOLDS = ("max_relative", "max_score", "weak_positive", "min_score", "min_relative", "top_k", "min_chars",
              "min_length_ratio", "max_length_ratio", "language", "near_duplicate", "positive_copy", "collision")
MINE_KEYS = ("k", "range_min", "range_max", "exclude_ratio", "dense_model", "max_seq_length", "seed")


def kept_folder(folder: Path) -> Path | None:
    for name in KEPT_FOLDERS:
        if (folder / name).is_dir():
            return folder / name
    return None


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_cell(x)}" for k, x in v.items()) or "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v) or "–"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def _acceptance(c: dict[str, Any]) -> float | None:
    if "acceptance" in c:
        return c["acceptance"]
    total = (c.get("kept") or 0) + (c.get("rejected") or 0)
    return round((c.get("kept") or 0) / total, 4) if total else None


def _column_counts(folder: Path, column: str) -> dict[str, dict[str, int]] | None:
    """{value: {kept, rejected}} read from the folder's datasets, or None when they are absent."""
    from datasets import load_from_disk

    kept_dir = kept_folder(folder)
    if kept_dir is None:
        return None
    out: dict[str, dict[str, int]] = {}
    for key, path in (("kept", kept_dir), ("rejected", folder / "rejects")):
        if not path.is_dir():
            continue
        ds = load_from_disk(str(path))
        if column not in ds.column_names:
            return None
        for value, n in Counter(ds[column]).items():
            out.setdefault(str(value), {"kept": 0, "rejected": 0})[key] += n
    return out


def _sample_texts(folder: Path, n: int = 100) -> list[str]:
    """Queries and passages of the first kept rows, for language detection."""
    from datasets import load_from_disk

    kept_dir = kept_folder(folder)
    if kept_dir is None:
        return []
    ds = load_from_disk(str(kept_dir))
    ds = ds.select(range(min(n, len(ds))))
    return [t for col in ("anchor", "positive", "negative") if col in ds.column_names for t in ds[col] if t]


def _thresholds(config: dict[str, Any]) -> dict[str, Any]:
    section = config.get("validate", config)  # stats.json of `validate` holds the section itself
    return {k: section[k] for k in THRESHOLDS if k in section}


def render_card(folder: Path, info: dict[str, Any]) -> str:
    counts = info.get("counts") or {}
    kept = counts.get("kept", info.get("kept"))
    rejected = counts.get("rejected", info.get("rejected"))
    candidates = counts.get("candidates", info.get("rows"))
    kind = info.get("kind") or ("validate" if "rows" in info else "generate")
    name = Path(info.get("output") or folder).name
    per_source = counts.get("per_source") or _column_counts(folder, "source") or {}
    per_strategy = counts.get("per_strategy") or _column_counts(folder, "strategy") or {}
    config = info.get("config") or {}
    templates = info.get("templates") or {}
    kept_name = kept_folder(folder).name if kept_folder(folder) else "triplets"

    hub = info.get("hub_configs")
    configs = list(hub) if hub else [n for n in CONFIGS]
    meta = metadata(info, name, kind, int(kept or 0), per_source, configs, _sample_texts(folder))
    meta["synthgen"] = {"command": kind, "kept": kept, "rejected": rejected, "candidates": candidates,
                        "sources": sorted(per_source)}
    source = source_dataset(info)
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# synthgen hard negatives: `{name}`", "",
             f"(query, positive, negative) triples for dense-retriever training, written by `synthgen {kind}`: "
             f"**{_cell(kept)} kept** of {_cell(candidates)} candidates ({_cell(rejected)} rejected, kept in the "
             "`rejects` config with the stage and the reason). Every negative records its `source` "
             "(synthetic/bm25/dense/random), `strategy`, `model`, `template_hash` and the scores that validated it "
             "(config `full`).", ""]
    if source:
        lines += [f"Source dataset: [{source}]({source_link(source)}).", ""]
    if meta["license"] == "unknown":
        lines += ["License: not set (`card.license`); the source corpus' terms apply to the passages.", ""]
    lines += configs_section(hub, configs)
    lines += trainer_snippets(info.get("repo_id") or "<repo-id>")
    lines += ["Locally: `datasets.load_from_disk(\"<run>/" + kept_name + "\")` holds the `full` rows.", ""]

    # Sources and generator.
    lines += ["## Sources", ""]
    src_info = info.get("sources") or {}
    rows = []
    for src in sorted(set(per_source) | set(src_info), key=lambda s: (s not in src_info, s)):
        e, c = src_info.get(src, {}), per_source.get(src, {})
        rows.append([src, e.get("count_per_pair"), e.get("strategy"), e.get("model"), e.get("candidates"),
                     c.get("kept"), c.get("rejected")])
    lines += _table(["source", "kept per pair", "strategy", "model", "candidates", "kept", "rejected"], rows)
    for src, e in src_info.items():
        extra = {k: v for k, v in e.items() if k not in ("count_per_pair", "strategy", "model", "candidates", "kept",
                                                        "rejected", "cache_file", "path")}
        if extra:
            lines.append(f"- `{src}`: {_cell(extra)}")
    if src_info:
        lines.append("")
    inp = info.get("input")
    lines += ["## Generation", ""]
    lines += _table(["item", "value"], [
        ["input", inp if isinstance(inp, dict) else inp],
        ["generator model (LLM)", info.get("model")],
        ["backend", info.get("backend")],
        ["validation scorer", info["scorer"]["name"] if isinstance(info.get("scorer"), dict) else info.get("scorer")],
    ])
    if "mine" in config and kind == "mine":
        lines += ["### Mining settings", ""]
        lines += _table(["key", "value"], [[k, config["mine"].get(k)] for k in MINE_KEYS])

    if templates:
        lines += ["## Prompts", ""]
        lines += _table(["template", "strategy", "sha256 (short)", "file"],
                        [[n, t.get("strategy"), t.get("hash"), t.get("file")] for n, t in templates.items()])

    lines += ["## Validation thresholds", ""]
    lines += _table(["key", "value"], [[k, v] for k, v in _thresholds(config).items()])

    lines += ["## Counts", ""]
    top = [[k, v] for k, v in counts.items() if not isinstance(v, dict)] or \
          [[k, info[k]] for k in ("rows", "kept", "rejected") if k in info]
    lines += _table(["count", "value"], top)
    stages = info.get("stages") or {}
    if stages:
        lines += ["### Per stage", ""]
        lines += _table(["stage", "in", "out", "rejected", "rejected by reason", "seconds"],
                        [[n, s.get("in"), s.get("out"), s.get("rejected"), s.get("rejected_by_reason"),
                          s.get("seconds")] for n, s in stages.items()])
    if per_strategy:
        lines += ["### Per strategy", ""]
        lines += _table(["strategy", "kept", "rejected", "acceptance", "rejected by reason"],
                        [[s, c.get("kept"), c.get("rejected"), _acceptance(c), c.get("rejected_by_reason")]
                         for s, c in per_strategy.items()])
    if per_source:
        lines += ["### Per source", ""]
        lines += _table(["source", "kept", "rejected", "acceptance", "rejected by reason"],
                        [[s, c.get("kept"), c.get("rejected"), _acceptance(c), c.get("rejected_by_reason")]
                         for s, c in per_source.items()])
        if kind == "mine":
            lines += ["`over_quota` rejects are the surplus candidates (`mine.k` per pair and source) beyond the "
                      "count kept per pair: they are expected.", ""]
    if info.get("qrels_check"):
        lines += ["### Mined negatives the qrels judge relevant", ""]
        lines += _table(["check", "value"], [[k, v] for k, v in info["qrels_check"].items()])
    if info.get("llm"):
        llm = info["llm"]
        lines += ["### LLM usage", ""]
        lines += _table(["item", "value"], [[k, v] for k, v in llm.items() if not isinstance(v, dict)])

    hists = info.get("histograms") or []
    if hists:
        lines += ["## Score histograms", "", "Scores of the negatives that reached the scorer, kept vs rejected.", ""]
        lines += [f"![{Path(h).stem}]({h})" for h in hists] + [""]
    if info.get("finished_at") or info.get("seconds") is not None:
        lines += ["## Provenance", "", f"Finished {info.get('finished_at', '–')}; {_cell(info.get('seconds'))} s.", ""]
    lines += reproduction_section(info, kind)
    return "\n".join(lines)


def write_card(folder: str | Path, run_info: dict[str, Any]) -> Path:
    """Write `folder/README.md` (atomically) from a run's info; returns its path."""
    folder = Path(folder)
    dest = folder / "README.md"
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(render_card(folder, run_info), encoding="utf-8")
    os.replace(tmp, dest)
    return dest
