"""`synthgen validate`: the validation stage alone, on any dataset/JSONL of (query, positive, negative) rows."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from synthgen.core.cache import shared_cache_path
from synthgen.core.config import Config, config_to_dict
from synthgen.core.config_load import load_config
from synthgen.core.schema import batch_len, positives_by_query
from synthgen.io.candidates import load_candidates
from synthgen.runners.execute import run_pipeline
from synthgen.runners.report import finish_run
from synthgen.runners.run_folder import open_cache
from synthgen.validate.judge import JudgeFilter
from synthgen.validate.load import load_scorer
from synthgen.validate.steps import validation_steps
from synthgen.validate.steps import worker_steps as validate_worker_steps

log = logging.getLogger(__name__)


def validate_cache_path(cfg: Config, output: str | Path) -> Path:
    """`cache_file`, else `cache.sqlite` beside the output folder: `--output outputs/x` shares
    `outputs/cache.sqlite` with the generate and mine runs of the default `output_dir`."""
    return shared_cache_path(Path(output).resolve().parent, cfg.cache_file)


def validate_file(cfg: Config, input_path: str | Path, output: str | Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    folder = Path(output)
    rows = load_candidates(input_path)
    scorer = load_scorer(cfg.scorer)
    with contextlib.ExitStack() as stack:
        # Scores and judge answers go to the shared cache as they arrive: a rerun or a threshold change
        # scores nothing again.
        cache = open_cache(validate_cache_path(cfg, folder))
        stack.callback(cache.close)
        scorer.attach(cache)
        judge_backend = judge_template = None
        if cfg.validate_.judge.enabled:
            from synthgen.llm.engines import open_backend
            from synthgen.llm.prompt import load_templates

            (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
            judge_backend = open_backend(cfg, stack)
        steps = validation_steps(cfg.validate_, scorer, list(dict.fromkeys(rows["positive"])),
                                 judge_backend, judge_template, positives_by_query(rows), cache=cache)
        worker = None
        if cfg.runner == "ray":
            from synthgen.llm.engines import worker_config

            worker = (validate_worker_steps, (worker_config(cfg, judge_backend), rows, str(cache.path)))
        kept, rejects, stats, runner = run_pipeline(cfg, steps, rows, "validate", stack, folder, worker,
                                                    batch_queries=64)
    n_kept, n_rejected = sum(batch_len(b) for b in kept), sum(batch_len(b) for _, b in rejects)
    fields: dict[str, Any] = {
        "input": str(input_path),
        "rows": len(rows["query"]),
        # Top-level totals as `validate` has always written them (the shared report has them under counts too).
        "kept": n_kept,
        "rejected": n_rejected,
        "runner": runner,
        "scorer": {"name": scorer.name, "pairs_scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits,
                   "embeddings_from_store": scorer.embeddings_from_store},
        "cache": str(cache.path),
        "counts": {"rows": len(rows["query"])},
        **{"judge": step.counts() for step in steps if isinstance(step, JudgeFilter)},
    }
    stats = finish_run("validate", folder, t0, stats, kept, rejects, config_to_dict(cfg), fields,
                       kept_name="kept", report_name="stats.json")
    log.info("kept %d of %d rows (%d rejected)", n_kept, stats["rows"], n_rejected)
    return stats


def run(args) -> int:
    cfg = load_config(args.config, args.overrides)
    stats = validate_file(cfg, args.input, args.output)
    for name, st in stats["stages"].items():
        print(f"{name:10s} in={st['in']:6d} out={st['out']:6d} {st['rejected_by_reason']}")
    print(args.output)
    return 0
