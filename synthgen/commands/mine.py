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

from synthgen.core.config import MINE_SOURCES, Config, config_to_dict
from synthgen.core.config_load import load_config
from synthgen.core.device import open_dense_model, resolve_device
from synthgen.core.schema import Batch, batch_len, positives_by_query
from synthgen.core.step import Step, reason_key
from synthgen.io.beir import load_qrels
from synthgen.io.read import load_input
from synthgen.io.row_sink import RowSink
from synthgen.negatives.corpus import input_folder, load_mining_corpus
from synthgen.negatives.miners.bm25 import BM25Miner
from synthgen.negatives.miners.dense import DenseMiner, default_cache_dir
from synthgen.negatives.miners.random import RandomMiner
from synthgen.negatives.mix import MixFilter
from synthgen.negatives.sources import CandidateSources, MinedSource, SyntheticFile, SyntheticLLM
from synthgen.runners.local import Pipeline
from synthgen.runners.report import finish_run

log = logging.getLogger(__name__)


def shares_model(scorer, dense: DenseMiner) -> bool:
    """The validation scorer is the dense miner's model at the same max length: its embeddings can be reused."""
    return getattr(scorer, "model", None) is dense.st_model and \
        getattr(scorer, "max_length", None) == dense.cfg.max_seq_length and \
        getattr(scorer, "passage_prompt", None) == (dense.cfg.passage_prompt or "")


def _count_by(batches: list[Batch], column: str) -> Counter:
    return Counter(v for b in batches for v in b.get(column, []))


def mine(cfg: Config) -> Path:
    from synthgen.llm.engines import open_backend
    from synthgen.runners.run_folder import start_run
    from synthgen.validate.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer, load_scorer
    from synthgen.validate.steps import validation_steps

    t_start = time.perf_counter()
    mcfg = cfg.mine
    folder, cache = start_run(cfg, "mine")
    pairs = load_input(cfg.input)
    corpus = load_mining_corpus(cfg.input, pairs)
    quotas = {s: mcfg.sources[s] for s in MINE_SOURCES if mcfg.sources.get(s, 0) > 0}
    n_queries = len(set(pairs["query_id"]))
    log.info("%d queries, %d pairs, %d passages; per pair: %s", n_queries, batch_len(pairs), len(corpus),
             ", ".join(f"{n} {s}" for s, n in quotas.items()))
    with contextlib.ExitStack() as stack:
        stack.callback(cache.close)
        dense = None
        if "dense" in quotas:
            dense_model, dense_name, dense_ref = open_dense_model(mcfg)
        if cfg.scorer.model is None and "dense" in quotas and mcfg.dense_model is None \
                and resolve_device(cfg.scorer.device) == resolve_device(mcfg.device):
            log.warning("no cross-encoder configured: validating with %s (the dense miner's model, loaded once)",
                        EMBEDDED_SCORER_NAME)
            scorer = BiEncoderScorer(dense_model, EMBEDDED_SCORER_NAME, cfg.scorer)
        else:
            scorer = load_scorer(cfg.scorer)
        scorer.attach(cache)
        backend = templates = judge_template = None
        synthetic_llm = "synthetic" in quotas and not mcfg.synthetic_from
        if synthetic_llm or cfg.validate_.judge.enabled:
            from synthgen.llm.prompt import load_templates

            templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
            backend = open_backend(cfg, stack, len(templates) if synthetic_llm else 1)
            if cfg.validate_.judge.enabled:
                (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")

        sources: list[Step] = []
        for name in quotas:
            if name == "synthetic":
                sources.append(SyntheticFile(mcfg.synthetic_from) if mcfg.synthetic_from
                               else SyntheticLLM(templates, backend, scorer, cache))
            elif name == "bm25":
                sources.append(MinedSource(BM25Miner(corpus, mcfg.cache_dir or default_cache_dir()), corpus, mcfg))
            elif name == "dense":
                dense = DenseMiner(dense_model, dense_name, dense_ref, corpus, mcfg)
                sources.append(MinedSource(dense, corpus, mcfg))
            elif name == "random":
                sources.append(MinedSource(RandomMiner(corpus, mcfg.seed), corpus, mcfg))
        candidates_step = CandidateSources(sources)
        steps = [candidates_step,
                 *validation_steps(cfg.validate_, scorer, list(dict.fromkeys(pairs["positive"])),
                                   backend, judge_template, positives_by_query(pairs), corpus.texts, cache=cache),
                 MixFilter(quotas)]
        pipeline = stack.enter_context(Pipeline(steps))
        if dense is not None and shares_model(scorer, dense):
            scorer.preload(corpus.texts, dense.emb)  # the corpus is encoded once, not again by the scorer
        sink = RowSink(folder)  # rows on disk as each batch finishes: memory stays flat over many queries
        kept, rejects = pipeline.run_all(pairs, cfg.batch_queries, desc="mine", sink=sink)

    n_kept = sum(batch_len(b) for b in kept)
    rejected_batches = [b for _, b in rejects]
    kept_by_source, rej_by_source = _count_by(kept, "source"), _count_by(rejected_batches, "source")
    per_source: dict[str, dict[str, Any]] = {}
    for s in sources:
        entry: dict[str, Any] = {"count_per_pair": quotas[s.name], "candidates": candidates_step.rows[s.name],
                                 "kept": kept_by_source[s.name], "rejected": rej_by_source[s.name],
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
        "templates": ({t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates}
                      if synthetic_llm else {}),
        "sources": per_source,
        "counts": {
            "pairs": batch_len(pairs),
            "candidates": candidates,
            "per_source": {s: {"kept": e["kept"], "rejected": e["rejected"],
                               "rejected_by_reason": dict(reasons_by_source.get(s, {}))}
                           for s, e in per_source.items()},
        },
        "qrels_check": qrels_check,
        "scorer_pairs": {"scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits},
    }
    if synthetic_llm or cfg.validate_.judge.enabled:
        from synthgen.llm.engines import llm_accounting

        fields["llm"] = llm_accounting(cfg, backend, n_kept, candidates)
    report = finish_run("mine", folder, t_start, pipeline.stats, kept, rejects, config_to_dict(cfg), fields,
                        sink=sink)
    n_rejected = report["counts"]["rejected"]
    log.info("kept %d of %d candidates (%d rejected rows)", n_kept, candidates, n_rejected)
    return folder


def run(args) -> int:
    print(mine(load_config(args.config, args.overrides)))
    return 0
