"""Dedup figure: DedupFilter vs a naive pairwise loop over the same candidates (BM25 neighbours of Cranfield
queries plus LLM-like near-copies), same rules, same decisions."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from benchmarks.timing import best_of

# The naive side's normaliser is the regex one synthgen used before its translate-based rewrite (same output).
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def regex_normalise(text: str | None) -> str:
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


def naive_dedup(batch: dict[str, list], positive_copy: float, near_duplicate: float) -> list[str | None]:
    """DedupFilter's rules (one positive per query, as in the bench batch) with one `fuzz.ratio` call per pair
    in Python loops: the rule name of each rejection, None for a kept row."""
    from rapidfuzz import fuzz

    reasons: list[str | None] = [None] * len(batch["negative"])
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(batch["query_id"]):
        groups.setdefault(q, []).append(i)
    for rows in groups.values():
        negs = [regex_normalise(batch["negative"][i]) for i in rows]
        pos = regex_normalise(batch["positive"][rows[0]])
        seen: dict[str, int] = {}
        kept: list[int] = []
        for k, i in enumerate(rows):
            if negs[k] in seen:
                reasons[i] = "duplicate"
            elif fuzz.ratio(negs[k], pos) >= positive_copy:
                reasons[i] = "copies_positive"
            else:
                for j in kept:
                    if fuzz.ratio(negs[k], negs[j]) >= near_duplicate:
                        reasons[i] = "near_duplicate"
                        break
            seen.setdefault(negs[k], k)
            if reasons[i] is None:
                kept.append(k)
    return reasons


def dedup_batch(data: Path, n_queries: int, per_query: int) -> dict[str, list]:
    """`per_query` BM25 neighbours of each of the first `n_queries` train queries, plus near-copies of a fifth
    of them with two words changed (as an LLM rewrites), all under the query's first positive."""
    from synthgen.io.beir import load_beir, load_corpus
    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.miners.bm25 import BM25Miner

    corpus_d = load_corpus(Path(data))
    corpus = Corpus(list(corpus_d), list(corpus_d.values()))
    pairs = load_beir(Path(data), "train")
    first: dict[str, int] = {}
    for i, q in enumerate(pairs["query_id"]):
        first.setdefault(q, i)
    idx = list(first.values())[:n_queries]
    ranked = BM25Miner(corpus).rank([pairs["query_id"][i] for i in idx], [pairs["query"][i] for i in idx], per_query)
    rng = random.Random(0)
    batch: dict[str, list] = {"query_id": [], "positive": [], "negative": []}
    for i, cands in zip(idx, ranked):
        texts = [corpus.texts[c] for c in cands]
        for t in texts[: len(texts) // 5]:
            words = t.split()
            for _ in range(2):
                words[rng.randrange(len(words))] = "altered"
            texts.append(" ".join(words))
        for t in texts:
            batch["query_id"].append(pairs["query_id"][i])
            batch["positive"].append(pairs["positive"][i])
            batch["negative"].append(t)
    return batch


def bench_dedup(data: Path, n_queries: int, per_query: int) -> dict[str, Any]:
    from synthgen.core.config import ValidateConfig
    from synthgen.validate.dedup import DedupFilter

    batch = dedup_batch(data, n_queries, per_query)
    cfg = ValidateConfig()
    best, last = best_of({"synthgen": lambda: DedupFilter(cfg).decide(batch),
                          "naive": lambda: naive_dedup(batch, cfg.positive_copy, cfg.near_duplicate)})
    ours = [None if r is None else r.rule for r in last["synthgen"]]
    return {"candidates": len(batch["negative"]), "queries": n_queries, "rejected": sum(r is not None for r in ours),
            "same_decisions": ours == last["naive"], "synthgen_seconds": round(best["synthgen"], 3),
            "naive_seconds": round(best["naive"], 3), "ratio": round(best["naive"] / best["synthgen"], 2)}
