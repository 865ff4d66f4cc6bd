"""queries: corpus-only input. The LLM writes queries for sampled passages (the InPars / Promptagator idea);
a query is kept only if its source passage comes back in the scorer's top-k among BM25 candidates
(round-trip consistency). The kept (query, passage) pairs then go through the normal pipeline.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from typing import Any

from synthgen.core.config import Config
from synthgen.core.schema import PAIR_COLUMNS, Batch, empty_batch
from synthgen.core.step import Reject, reason_columns, reason_key
from synthgen.io.input_files import InputStats
from synthgen.io.read import clean_corpus
from synthgen.llm.parse import ParseError
from synthgen.llm.prompt import load_templates, make_env

log = logging.getLogger(__name__)

QUERY_SCHEMA = {"type": "object", "properties": {"query": {"type": "string", "minLength": 3}}, "required": ["query"]}


def parse_query(text: str | None) -> str:
    body = (text or "").strip()
    try:
        data = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg}") from None
    query = data.get("query") if isinstance(data, dict) else None
    if not isinstance(query, str) or len(query.strip()) < 3:
        raise ParseError('expected {"query": "..."}')
    return " ".join(query.split())


def round_trip(queries: list[str], sources: list[int], corpus, scorer, top_k: int, depth: int) -> list[str | None]:
    """None when the source passage ranks in the scorer's top-k of the BM25 candidates, else the reason."""
    from synthgen.negatives.miners.bm25 import BM25Miner

    ranked = BM25Miner(corpus).rank([str(i) for i in range(len(queries))], queries, depth)
    reasons: list[str | None] = []
    for q, src, cands in zip(queries, sources, ranked):
        if src not in cands:
            reasons.append(Reject("not_retrieved", "source not in BM25 top-{depth}", depth=depth))
            continue
        scores = scorer.score([q] * len(cands), [corpus.texts[c] for c in cands])
        order = sorted(range(len(cands)), key=lambda j: -scores[j])
        rank = [cands[j] for j in order].index(src) + 1
        reasons.append(None if rank <= top_k else Reject("inconsistent", "source ranked {rank} > top-{top_k}", rank=rank,
                                                             top_k=top_k))
    return reasons


def synthesize_pairs(cfg: Config, backend, scorer, stats: InputStats,
                     cache=None) -> tuple[Batch, dict[str, Any], Batch]:
    """Corpus -> (query, positive) pairs; returns the pairs, counts for run.json and the rejected queries."""
    from synthgen.negatives.corpus import Corpus

    qcfg = cfg.queries
    ids, texts = [], []
    for pid, text in clean_corpus(cfg.input, stats):
        ids.append(pid)
        texts.append(text)
    if not texts:
        raise ValueError("the corpus has no usable passages")
    corpus = Corpus(ids, texts)
    rng = random.Random(qcfg.seed)
    chosen = sorted(rng.sample(range(len(texts)), min(qcfg.max_passages or len(texts), len(texts))))
    templates = load_templates(cfg.prompts.dir, qcfg.strategies, kind="query")
    env = make_env()
    prompts, sources, kinds = [], [], []
    for i in chosen:
        for t in templates:
            prompts.append(t.render(env, passage=texts[i], n=1))
            sources.append(i)
            kinds.append(t.name)
    log.info("writing %d synthetic queries for %d passages (%s)", len(prompts), len(chosen),
             ", ".join(t.name for t in templates))
    from synthgen.core.cache import cached_ask

    answers = cached_ask(backend, cache, prompts, parse_query, QUERY_SCHEMA, max_tokens=64,
                         temperature=cfg.llm.temperature, task="query")
    written = [(a, s, k) for (a, err), s, k in zip(answers, sources, kinds) if err is None]
    failed = len(answers) - len(written)
    # Queries that fail or are dropped go to rejects/ (stage "queries"): nothing is lost silently.
    rejects = empty_batch(PAIR_COLUMNS + ["source", "strategy"])
    why: list[Reject] = []

    def reject(query: str | None, src: int, kind: str, reason: Reject) -> None:
        for col, val in zip(rejects, (f"syn-rejected-{len(rejects['query'])}", query or "", ids[src], texts[src],
                                      "synthetic_query", kind)):
            rejects[col].append(val)
        why.append(reason)

    for (a, err), src, kind in zip(answers, sources, kinds):
        if err is not None:
            reject(None, src, kind, Reject("generation_failed", "{error}", error=err))
    reasons = round_trip([a for a, _, _ in written], [s for _, s, _ in written], corpus, scorer,
                         qcfg.top_k, qcfg.bm25_candidates) if written else []
    pairs = empty_batch(PAIR_COLUMNS)
    per_type: dict[str, Counter] = {}
    for (query, src, kind), reason in zip(written, reasons):
        per_type.setdefault(kind, Counter())["kept" if reason is None else "dropped"] += 1
        if reason is None:
            for col, val in zip(PAIR_COLUMNS, (f"syn-{len(pairs['query'])}", query, ids[src], texts[src])):
                pairs[col].append(val)
        else:
            reject(query, src, kind, reason)
    rejects.update(reason_columns(why))
    dropped = Counter(reason_key(r) for r in reasons if r is not None)
    counts = {"passages": len(chosen), "written": len(written), "failed": failed, "kept": len(pairs["query"]),
              "dropped_by_reason": dict(dropped), "per_type": {k: dict(v) for k, v in per_type.items()}}
    log.info("synthetic queries: kept %d of %d (%s)", counts["kept"], len(written), dict(dropped))
    return pairs, counts, rejects
