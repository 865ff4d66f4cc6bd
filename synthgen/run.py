"""`synthgen generate`: read -> prompt -> generate -> quality -> dedup -> validate -> write, batch by batch."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from synthgen.config import Config, config_to_dict
from synthgen.dedup import DedupFilter
from synthgen.generate import GenerateStep, OpenAIBackend
from synthgen.pipeline import Pipeline
from synthgen.prompt import PromptStep, load_templates
from synthgen.read import load_input
from synthgen.schema import Batch, batch_len, take
from synthgen.scorer import load_scorer
from synthgen.server import LocalLlamaServer
from synthgen.validate import QualityFilter, ScoreFilter
from synthgen.write import package_versions, write_json, write_run

log = logging.getLogger(__name__)


def query_batches(pairs: Batch, size: int) -> list[Batch]:
    """Split pairs into batches of `size` queries, keeping all rows of a query together."""
    order: dict[str, list[int]] = {}
    for i, qid in enumerate(pairs["query_id"]):
        order.setdefault(qid, []).append(i)
    groups = list(order.values())
    return [take(pairs, [i for g in groups[k:k + size] for i in g]) for k in range(0, len(groups), size)]


def run_folder(cfg: Config) -> Path:
    name = cfg.run_name or datetime.now().strftime("run-%Y%m%d-%H%M%S")
    return Path(cfg.output_dir) / name


def generate(cfg: Config) -> Path:
    t_start = time.perf_counter()
    folder = run_folder(cfg)
    pairs = load_input(cfg.input)
    templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
    n_queries = len(set(pairs["query_id"]))
    log.info("%d queries, %d pairs, strategies: %s", n_queries, batch_len(pairs),
             ", ".join(t.name for t in templates))

    with contextlib.ExitStack() as stack:
        if cfg.llm.base_url:
            base_url, model, fmt = cfg.llm.base_url, cfg.llm.model, cfg.llm.response_format
            fmt = "json_schema" if fmt == "auto" else fmt
        else:
            server = stack.enter_context(LocalLlamaServer(
                cfg.llm.gguf, cfg.llm.server_ctx, cfg.llm.server_threads, cfg.llm.server_startup_timeout_s))
            base_url, model = server.base_url, server.model_name
            fmt = "json_object_schema" if cfg.llm.response_format == "auto" else cfg.llm.response_format
        backend = OpenAIBackend(cfg.llm, base_url, model, fmt, cfg.prompts.negatives_per_prompt)
        scorer = load_scorer(cfg.scorer)
        steps = [
            PromptStep(templates, cfg.prompts.negatives_per_prompt),
            GenerateStep(backend),
            QualityFilter(cfg.validate_),
            DedupFilter(cfg.validate_),
            ScoreFilter(scorer, cfg.validate_),
        ]
        kept: list[Batch] = []
        rejects: list[tuple[str, Batch]] = []
        pipeline = stack.enter_context(Pipeline(steps))
        with tqdm(total=n_queries, desc="queries", unit="q") as bar:
            for batch in query_batches(pairs, cfg.batch_queries):
                out, dropped = pipeline.run_batch(batch)
                kept.append(out)
                rejects.extend(dropped)
                bar.update(len(set(batch["query_id"])))

    n_kept, n_rejected = write_run(folder, kept, rejects)
    candidates = pipeline.stats["generate"].rows_out + pipeline.stats["generate"].rejected.total()
    info: dict[str, Any] = {
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "seconds": round(time.perf_counter() - t_start, 2),
        "output": str(folder),
        "input": {"queries": n_queries, "pairs": batch_len(pairs)},
        "model": model,
        "base_url": base_url if cfg.llm.base_url else "embedded llama.cpp server (127.0.0.1)",
        "scorer": scorer.name,
        "templates": {t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates},
        "counts": {
            "prompts": pipeline.stats["generate"].rows_in,
            "candidates": candidates,
            "kept": n_kept,
            "rejected": n_rejected,
            "per_strategy": per_strategy(kept, rejects),
        },
        "stages": {name: st.as_dict() for name, st in pipeline.stats.items()},
        "llm": backend.usage.as_dict(),
        "scorer_pairs": {"scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits},
        "config": config_to_dict(cfg),
        "versions": package_versions(),
    }
    write_json(info, folder / "run.json")
    log.info("kept %d of %d candidates (%d rejected rows)", n_kept, candidates, n_rejected)
    return folder


def per_strategy(kept: list[Batch], rejects: list[tuple[str, Batch]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for b in kept:
        for s in b.get("strategy", []):
            out.setdefault(s, {"kept": 0, "rejected": 0})["kept"] += 1
    for _, b in rejects:
        for s in b.get("strategy", []):
            out.setdefault(s, {"kept": 0, "rejected": 0})["rejected"] += 1
    return out
