"""`synthgen generate`: read -> prompt -> generate -> quality -> dedup -> validate -> write, batch by batch."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from synthgen.cache import RunCache, content_key
from synthgen.config import Config, config_to_dict
from synthgen.engines import build_backend, llm_accounting
from synthgen.generate import Backend, GenerateStep
from synthgen.pipeline import Pipeline
from synthgen.prompt import PromptStep, load_templates
from synthgen.queries import synthesize_pairs
from synthgen.read import InputStats, detect_format, finish_pairs, load_input_with_stats, sample_path
from synthgen.schema import Batch, batch_len, positives_by_query
from synthgen.scorer import load_scorer
from synthgen.validate import JudgeFilter, validation_steps
from synthgen.write import package_versions, write_histograms, write_json, write_run

log = logging.getLogger(__name__)


def run_folder(cfg: Config) -> Path:
    """`run_name`, or a name derived from the resolved config: rerunning the same command resumes the same run."""
    if cfg.run_name:
        return Path(cfg.output_dir) / cfg.run_name
    # Only what decides the LLM's work: changing thresholds reruns validation on cached generations.
    settings = {k: v for k, v in config_to_dict(cfg).items() if k in ("input", "llm", "prompts", "backend", "vllm")}
    stem = Path(cfg.input.path).name if cfg.input.path else "sample"
    return Path(cfg.output_dir) / f"{stem}-{content_key(settings)[:10]}"


def open_backend(cfg: Config, stack: contextlib.ExitStack, strategies: int = 1) -> Backend:
    """The configured backend (`backend: openai | vllm`; see synthgen/engines.py), closed by `stack`."""
    return build_backend(cfg, stack, prompts_per_batch=cfg.batch_queries * strategies)


def generate(cfg: Config) -> Path:
    t_start = time.perf_counter()
    folder = run_folder(cfg)
    input_path = Path(cfg.input.path) if cfg.input.path else sample_path()
    corpus_only = detect_format(cfg.input, input_path) == "corpus"
    query_counts: dict[str, Any] | None = None
    if not corpus_only:
        pairs, input_stats = load_input_with_stats(cfg.input)
    templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)

    with contextlib.ExitStack() as stack:
        cache = RunCache(folder / "cache.sqlite")
        stack.callback(cache.close)
        backend = open_backend(cfg, stack, len(templates))
        scorer = load_scorer(cfg.scorer)
        scorer.attach(cache)
        if corpus_only:
            # No queries given: write them first, keep those that find their own passage again.
            input_stats = InputStats()
            pairs, query_counts = synthesize_pairs(cfg, backend, scorer, input_stats, cache)
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
                              backend, judge_template, positives_by_query(pairs)),
        ]
        pipeline = stack.enter_context(Pipeline(steps))
        kept, rejects = pipeline.run_all(pairs, cfg.batch_queries, desc="queries")

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
            "kept": n_kept,
            "rejected": n_rejected,
            "per_strategy": per_strategy(kept, rejects),
        },
        "stages": {name: st.as_dict() for name, st in pipeline.stats.items()},
        # This run only: prompts sent to the engine, and prompts answered from cache.sqlite (a resume).
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
    log.info("kept %d of %d candidates (%d rejected; %d prompts not applicable, also in rejects/)", n_kept,
             candidates, n_rejected - not_applicable, not_applicable)
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
