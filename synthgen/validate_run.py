"""`synthgen validate`: the validation stage alone, on any dataset/JSONL of (query, positive, negative) rows."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from synthgen.config import Config, config_to_dict
from synthgen.pipeline import Pipeline
from synthgen.read import LoaderError, hf_dataset
from synthgen.schema import CANDIDATE_COLUMNS, OPTIONAL_COLUMNS, Batch, positives_by_query
from synthgen.scorer import load_scorer
from synthgen.validate import JudgeFilter, validation_steps
from synthgen.write import package_versions, write_histograms, write_json, write_run

log = logging.getLogger(__name__)

REQUIRED = ("query", "positive", "negative")


def _short_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_candidates(path: str | Path) -> Batch:
    """A `save_to_disk` folder, or a .jsonl/.json/.parquet/.csv file, with query (or anchor), positive, negative."""
    p = Path(path)
    if not p.exists():
        raise LoaderError(f"missing file: {p}")
    ds = hf_dataset(str(p), "train")
    if "anchor" in ds.column_names and "query" not in ds.column_names:
        ds = ds.rename_column("anchor", "query")
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if missing:
        raise LoaderError(f"{p}: missing column {missing[0]!r} (have: {', '.join(ds.column_names)})")
    rows = ds.to_dict()
    n = len(rows["query"])
    if n == 0:
        raise LoaderError(f"{p}: no rows")
    out: Batch = {c: rows.get(c, [None] * n) for c in CANDIDATE_COLUMNS + OPTIONAL_COLUMNS}
    # Ids group a query's negatives; derive them from the text when the file has none.
    out["query_id"] = [qid or _short_id(q) for qid, q in zip(out["query_id"], out["query"])]
    out["positive_id"] = [pid or _short_id(p) for pid, p in zip(out["positive_id"], out["positive"])]
    return out


def validate_file(cfg: Config, input_path: str | Path, output: str | Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    folder = Path(output)
    rows = load_candidates(input_path)
    scorer = load_scorer(cfg.scorer)
    with contextlib.ExitStack() as stack:
        judge_backend = judge_template = None
        if cfg.validate_.judge.enabled:
            from synthgen.prompt import load_templates
            from synthgen.run import open_backend

            (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
            judge_backend = open_backend(cfg, stack)
        steps = validation_steps(cfg.validate_, scorer, list(dict.fromkeys(rows["positive"])),
                                 judge_backend, judge_template, positives_by_query(rows))
        pipeline = stack.enter_context(Pipeline(steps))
        kept, rejects = pipeline.run_all(rows, 64, desc="validate")
    n_kept, n_rejected = write_run(folder, kept, rejects, kept_name="kept")
    stats = {
        "input": str(input_path),
        "rows": len(rows["query"]),
        "kept": n_kept,
        "rejected": n_rejected,
        "stages": {name: st.as_dict() for name, st in pipeline.stats.items()},
        "histograms": write_histograms(folder, kept, rejects),
        "scorer": {"name": scorer.name, "pairs_scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits},
        "seconds": round(time.perf_counter() - t0, 2),
        "config": config_to_dict(cfg)["validate"],
        "versions": package_versions(),
    }
    for step in steps:
        if isinstance(step, JudgeFilter):
            stats["judge"] = step.counts()
    write_json(stats, folder / "stats.json")
    from synthgen.card import write_card

    write_card(folder, stats)
    log.info("kept %d of %d rows (%d rejected)", n_kept, stats["rows"], n_rejected)
    return stats
