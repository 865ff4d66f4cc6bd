"""`synthgen generate`: read -> prompt -> generate -> quality -> dedup -> validate -> write, batch by batch."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from synthgen.core.config import Config, config_to_dict
from synthgen.core.config_load import load_config
from synthgen.core.package_data import sample_path
from synthgen.core.schema import Batch, batch_len
from synthgen.io.input_files import InputStats
from synthgen.io.read import detect_format, finish_pairs
from synthgen.llm.engines import llm_accounting, open_backend
from synthgen.llm.plan import generate_steps, worker_steps
from synthgen.llm.prompt import load_templates
from synthgen.llm.queries import synthesize_pairs
from synthgen.runners.execute import read_pairs, run_pipeline
from synthgen.runners.report import finish_run
from synthgen.runners.run_folder import start_run
from synthgen.validate.judge import JudgeFilter
from synthgen.validate.load import load_scorer

log = logging.getLogger(__name__)


def generate(cfg: Config) -> Path:
    t_start = time.perf_counter()
    input_path = Path(cfg.input.path) if cfg.input.path else sample_path()
    corpus_only = detect_format(cfg.input, input_path) == "corpus"
    folder, cache = start_run(cfg, "generate", corpus_only)
    query_counts: dict[str, Any] | None = None
    query_rejects: Batch | None = None
    if not corpus_only:
        pairs, input_stats = read_pairs(cfg)
    templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)

    with contextlib.ExitStack() as stack:
        stack.callback(cache.close)
        backend = open_backend(cfg, stack, len(templates))
        scorer = load_scorer(cfg.scorer)
        scorer.attach(cache)
        if corpus_only:
            # No queries given: write them first, keep those that find their own passage again.
            input_stats = InputStats()
            pairs, query_counts, query_rejects = synthesize_pairs(cfg, backend, scorer, input_stats, cache)
            pairs = finish_pairs(pairs, cfg.input, input_stats, str(input_path))
        n_queries = len(set(pairs["query_id"]))
        log.info("%d queries, %d pairs, strategies: %s", n_queries, batch_len(pairs),
                 ", ".join(t.name for t in templates))
        steps = generate_steps(cfg, pairs, backend, scorer, cache, templates)
        generate_step = steps[1]
        worker = processed = None
        if cfg.runner == "ray":
            from synthgen.llm.engines import worker_config

            if cfg.ray.llm_stage == "processor":
                from synthgen.runners.ray_llm import llm_stage_on_ray

                worker, processed = llm_stage_on_ray(worker_config(cfg, backend), backend, pairs, str(cache.path),
                                                     folder)
            else:
                worker = (worker_steps, (worker_config(cfg, backend), pairs, str(cache.path)))
        kept, rejects, stats, runner = run_pipeline(cfg, steps, pairs, "queries", stack, folder, worker)
        if processed is not None:
            from synthgen.runners.ray_llm import account

            account(processed, generate_step, backend)
            runner["llm_stage"] = "processor"
    if query_rejects is not None and batch_len(query_rejects):
        rejects.insert(0, ("queries", query_rejects))

    n_kept = sum(batch_len(b) for b in kept)
    candidates = stats["generate"].rows_out + stats["generate"].rejected.total()
    not_applicable = stats["prompt"].rejected.total()  # e.g. answer_removed on a one-sentence positive
    dropped = batch_len(query_rejects) if query_rejects is not None else 0
    report = finish_run("generate", folder, t_start, stats, kept, rejects, config_to_dict(cfg), {
        "input": {"queries": n_queries, "pairs": batch_len(pairs), **input_stats.as_dict(),
                  **({"synthetic_queries": query_counts} if query_counts is not None else {})},
        "model": backend.model,
        "backend": cfg.backend,
        "base_url": backend.endpoint,
        "scorer": scorer.name,
        "runner": runner,
        "templates": {t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates},
        "counts": {
            "prompts": stats["generate"].rows_in,
            "candidates": candidates,
            "not_applicable": not_applicable,
            # corpus input: synthetic queries that failed or missed the round trip (rows in rejects/ too)
            "queries_dropped": dropped,
        },
        # This run only: prompts sent to the engine, and prompts answered from the shared cache (a resume).
        "requests_sent": generate_step.requests_sent,
        "cache_hits": generate_step.cache_hits,
        "llm": llm_accounting(cfg, backend, n_kept, candidates),
        "scorer_pairs": scorer.counts(),
        **{"judge": step.counts() for step in steps if isinstance(step, JudgeFilter)},
    })
    n_rejected = report["counts"]["rejected"]
    log.info("kept %d of %d candidates (%d rejected; %d prompts not applicable and %d synthetic queries dropped, "
             "also in rejects/)", n_kept, candidates, n_rejected - not_applicable - dropped, not_applicable, dropped)
    return folder


def run(args) -> int:
    cfg = load_config(args.config, args.overrides)
    folder = generate(cfg)
    print(folder)
    return 0
