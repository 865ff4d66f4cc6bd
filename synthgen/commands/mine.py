"""`synthgen mine`: negatives retrieved from the corpus, mixed per (query, positive) with synthetic ones.

Sources: `random`, `bm25`, `dense` (negatives/miners/) and `synthetic` (the LLM, as in `generate`, or rows of an
earlier run). All candidates go through the same validation stage as `generate`; `MixFilter` then keeps the
`mine.sources[source]` hardest survivors per pair and source. Every row carries `source` and `strategy`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from synthgen.core.config import Config, config_to_dict
from synthgen.core.config_load import load_config
from synthgen.core.schema import Batch, batch_len
from synthgen.core.step import reason_key
from synthgen.io.beir import load_qrels
from synthgen.io.row_sink import RowSink
from synthgen.negatives.corpus import input_folder, load_mining_corpus
from synthgen.negatives.miners.bm25 import BM25Miner
from synthgen.negatives.plan import build_mine_plan, source_quotas, worker_steps
from synthgen.negatives.sources import MinedSource, SyntheticFile, SyntheticLLM
from synthgen.runners.execute import read_pairs, run_pipeline
from synthgen.runners.report import finish_run

log = logging.getLogger(__name__)


def _count_by(batches: list[Batch], column: str) -> Counter:
    return Counter(v for b in batches for v in b.get(column, []))


def mine(cfg: Config) -> Path:
    from synthgen.runners.run_folder import start_run

    t_start = time.perf_counter()
    mcfg = cfg.mine
    folder, cache = start_run(cfg, "mine")
    pairs, _ = read_pairs(cfg)
    corpus = load_mining_corpus(cfg.input, pairs)
    quotas = source_quotas(cfg)
    n_queries = len(set(pairs["query_id"]))
    log.info("%d queries, %d pairs, %d passages; per pair: %s", n_queries, batch_len(pairs), len(corpus),
             ", ".join(f"{n} {s}" for s, n in quotas.items()))
    with contextlib.ExitStack() as stack:
        stack.callback(cache.close)
        plan = build_mine_plan(stack, cfg, pairs, corpus, cache)
        worker = None
        if cfg.runner == "ray":
            from synthgen.llm.engines import worker_config
            from synthgen.runners.ray_runner import init_ray

            init_ray(cfg.ray)
            plan.candidates.setup()  # the corpus is encoded (dense, cached on disk) and indexed (BM25) once, here
            worker = (worker_steps, (worker_config(cfg, plan.backend), pairs, str(cache.path)))
        # Local runs stream rows to disk batch by batch (memory stays flat over many queries); Ray writes shards.
        sink = RowSink(folder) if cfg.runner == "local" else None
        kept, rejects, stats, runner = run_pipeline(cfg, plan.steps, pairs, "mine", stack, folder, worker, sink=sink)
    sources, candidates_step, quotas, scorer, backend = (plan.sources, plan.candidates, plan.quotas, plan.scorer,
                                                         plan.backend)
    templates, dense, synthetic_llm = plan.templates, plan.dense, plan.synthetic_llm

    n_kept = sum(batch_len(b) for b in kept)
    shared = dict(getattr(plan.steps[-1], "shared", {}))  # rows the shared pick copied to another positive
    rejected_batches = [b for _, b in rejects]
    kept_by_source, rej_by_source = _count_by(kept, "source"), _count_by(rejected_batches, "source")
    per_source: dict[str, dict[str, Any]] = {}
    for s in sources:
        entry: dict[str, Any] = {"count_per_pair": quotas[s.name], "candidates": candidates_step.rows[s.name],
                                 "kept": kept_by_source[s.name], "rejected": rej_by_source[s.name],
                                 "shared": shared.get(s.name, 0),
                                 "seconds": round(candidates_step.seconds[s.name], 2)}
        if isinstance(s, MinedSource):
            entry.update(strategy=s.miner.strategy(mcfg), model=s.miner.model,
                         examined=s.examined, excluded_positive_id=s.excluded["positive_id"],
                         excluded_positive_text=s.excluded["positive_text"], short_pairs=s.short_pairs)
        if isinstance(s, MinedSource) and isinstance(s.miner, BM25Miner):
            entry.update(index_seconds=round(s.miner.index_seconds, 2), cache_hit=s.miner.cache_hit,
                         index_folder=str(s.miner.index_folder))
        if isinstance(s, SyntheticFile):
            entry.update(model=s.model, path=str(s.path))
        if isinstance(s, SyntheticLLM):
            entry.update(model=backend.model)
        per_source[s.name] = entry
    if dense is not None:
        per_source["dense"].update(encode_seconds=round(dense.encode_seconds, 2), cache_hit=dense.cache_hit,
                                   model_ref=dense.model_ref, max_seq_length=mcfg.max_seq_length,
                                   cache_file=str(dense.cache_file), corpus_docs=len(corpus))

    # How many mined negatives the qrels (all splits) judge relevant for their query: should be 0.
    qrels_check = None
    folder_in = input_folder(cfg.input)
    if (folder_in / "qrels").is_dir():
        judged = load_qrels(folder_in)

        def hits(batches: list[Batch]) -> int:
            return sum(nid is not None and nid in judged.get(qid, ())
                       for b in batches for qid, nid in zip(b["query_id"], b.get("negative_id", [])))

        qrels_check = {"mined_candidates": sum(1 for b in kept + rejected_batches for n in b.get("negative_id", [])
                                               if n is not None),
                       "judged_relevant_in_candidates": hits(kept + rejected_batches),
                       "judged_relevant_in_kept": hits(kept)}

    candidates = sum(candidates_step.rows.values())
    reasons_by_source: dict[str, Counter] = defaultdict(Counter)
    for b in rejected_batches:
        for src, r in zip(b.get("source", []), b.get("reason", [])):
            reasons_by_source[src][reason_key(r)] += 1
    fields: dict[str, Any] = {
        "input": {"path": str(folder_in), "split": cfg.input.split, "queries": n_queries, "pairs": batch_len(pairs),
                  "corpus_docs": len(corpus)},
        "model": backend.model if synthetic_llm else per_source.get("synthetic", {}).get("model"),
        "backend": cfg.backend if synthetic_llm else None,
        "scorer": scorer.name,
        "runner": runner,
        "templates": ({t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates}
                      if synthetic_llm else {}),
        "sources": per_source,
        "counts": {
            "pairs": batch_len(pairs),
            "candidates": candidates,
            "shared": sum(shared.values()),
            "per_source": {s: {"kept": e["kept"], "rejected": e["rejected"],
                               "rejected_by_reason": dict(reasons_by_source.get(s, {}))}
                           for s, e in per_source.items()},
        },
        "qrels_check": qrels_check,
        "scorer_pairs": scorer.counts(),
    }
    if synthetic_llm or cfg.validate_.judge.enabled:
        from synthgen.llm.engines import llm_accounting

        fields["llm"] = llm_accounting(cfg, backend, n_kept, candidates)
    report = finish_run("mine", folder, t_start, stats, kept, rejects, config_to_dict(cfg), fields, sink=sink)
    n_rejected = report["counts"]["rejected"]
    log.info("kept %d of %d candidates (%d rejected rows)", n_kept, candidates, n_rejected)
    return folder


def run(args) -> int:
    print(mine(load_config(args.config, args.overrides)))
    return 0
