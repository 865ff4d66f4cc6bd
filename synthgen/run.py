"""`synthgen generate`: read -> prompt -> generate -> quality -> dedup -> validate -> write, batch by batch."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from synthgen.cache import RunCache, shared_cache_path
from synthgen.config import Config, config_to_dict
from synthgen.engines import build_backend, llm_accounting
from synthgen.generate import Backend, GenerateStep
from synthgen.identity import announce, resolve_run
from synthgen.pipeline import Pipeline
from synthgen.prompt import PromptStep, load_templates
from synthgen.queries import synthesize_pairs
from synthgen.read import InputStats, detect_format, finish_pairs, load_input_with_stats, sample_path
from synthgen.schema import Batch, batch_len, positives_by_query
from synthgen.scorer import load_scorer
from synthgen.validate import JudgeFilter, validation_steps
from synthgen.write import package_versions, write_histograms, write_json, write_run

log = logging.getLogger(__name__)


def start_run(cfg: Config, command: str, corpus_only: bool = False) -> tuple[Path, RunCache]:
    """The run folder (named by what changes the output, see identity.py), logged first with why it is new
    or reused, and the output folder's shared cache."""
    ident = resolve_run(cfg, command, corpus_only)
    announce(ident)
    ident.save()
    cache = RunCache(shared_cache_path(cfg.output_dir, cfg.cache_file))
    log.info("cache: %s (%d LLM answers, %d scores)", cache.path, cache.count("llm"), cache.count("scores"))
    return ident.folder, cache


def open_backend(cfg: Config, stack: contextlib.ExitStack, strategies: int = 1) -> Backend:
    """The configured backend (`backend: openai | vllm`; see synthgen/engines.py), closed by `stack`."""
    return build_backend(cfg, stack, prompts_per_batch=cfg.batch_queries * strategies)


def generate(cfg: Config) -> Path:
    t_start = time.perf_counter()
    input_path = Path(cfg.input.path) if cfg.input.path else sample_path()
    corpus_only = detect_format(cfg.input, input_path) == "corpus"
    folder, cache = start_run(cfg, "generate", corpus_only)
    query_counts: dict[str, Any] | None = None
    query_rejects: Batch | None = None
    if not corpus_only:
        pairs, input_stats = load_input_with_stats(cfg.input)
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
        generate_step = GenerateStep(backend, cache)
        judge_template = None
        if cfg.validate_.judge.enabled:
            (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
        steps = [
            PromptStep(templates, backend.passages_per_prompt, scorer),
            generate_step,
            *validation_steps(cfg.validate_, scorer, list(dict.fromkeys(pairs["positive"])),
                              backend, judge_template, positives_by_query(pairs), cache=cache),
        ]
        pipeline = stack.enter_context(Pipeline(steps))
        kept, rejects = pipeline.run_all(pairs, cfg.batch_queries, desc="queries")
    if query_rejects is not None and batch_len(query_rejects):
        rejects.insert(0, ("queries", query_rejects))

    n_kept, n_rejected = write_run(folder, kept, rejects)
    histograms = write_histograms(folder, kept, rejects)
    candidates = pipeline.stats["generate"].rows_out + pipeline.stats["generate"].rejected.total()
    not_applicable = pipeline.stats["prompt"].rejected.total()  # e.g. answer_removed on a one-sentence positive
    info: dict[str, Any] = {
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "seconds": round(time.perf_counter() - t_start, 2),
        "output": str(folder),
        "input": {"queries": n_queries, "pairs": batch_len(pairs), **input_stats.as_dict(),
                  **({"synthetic_queries": query_counts} if query_counts is not None else {})},
        "model": backend.model,
        "backend": cfg.backend,
        "base_url": backend.endpoint,
        "scorer": scorer.name,
        "templates": {t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates},
        "counts": {
            "prompts": pipeline.stats["generate"].rows_in,
            "candidates": candidates,
            "not_applicable": not_applicable,
            # corpus input: synthetic queries that failed or missed the round trip (rows in rejects/ too)
            "queries_dropped": batch_len(query_rejects) if query_rejects is not None else 0,
            "kept": n_kept,
            "rejected": n_rejected,
            "per_strategy": per_strategy(kept, rejects),
        },
        "stages": {name: st.as_dict() for name, st in pipeline.stats.items()},
        # This run only: prompts sent to the engine, and prompts answered from the shared cache (a resume).
        "requests_sent": generate_step.requests_sent,
        "cache_hits": generate_step.cache_hits,
        "llm": llm_accounting(cfg, backend, n_kept, candidates),
        "histograms": histograms,
        "scorer_pairs": {"scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits},
        **{"judge": step.counts() for step in steps if isinstance(step, JudgeFilter)},
        "config": config_to_dict(cfg),
        "versions": package_versions(),
    }
    write_json(info, folder / "run.json")
    from synthgen.card import write_card

    write_card(folder, info)  # README.md: the dataset card
    dropped = info["counts"]["queries_dropped"]
    log.info("kept %d of %d candidates (%d rejected; %d prompts not applicable and %d synthetic queries dropped, "
             "also in rejects/)", n_kept, candidates, n_rejected - not_applicable - dropped, not_applicable, dropped)
    return folder


def per_strategy(kept: list[Batch], rejects: list[tuple[str, Batch]]) -> dict[str, dict[str, Any]]:
    """Kept, rejected (by rule) and acceptance rate per strategy: which strategies are worth their tokens."""
    from synthgen.pipeline import reason_key

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
