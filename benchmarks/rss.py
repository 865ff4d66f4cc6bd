"""Peak RSS of `synthgen mine` over a generated BEIR corpus, measured in a child process.

`make bench` calls bench_rss (two query counts, the slope extrapolated and labelled as such);
`python -m benchmarks.rss` runs the scaling table (10k / 100k / 1M passages, fitted exponents)."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


def own_peak_mib() -> float:
    """Peak resident MiB of this process's own address space (VmHWM).

    Not getrusage's ru_maxrss: Linux carries the parent's high-water mark across fork+exec into it, so a
    child started by `make bench` (which holds MiniLM, torch and ST by then) reported the parent's ~1.2 GiB
    whatever it did itself (2,500 and 10,000 queries gave the same 1,186.7 MiB to the tenth)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc (not Linux)


def rss_child(folder: str, out: str, queries: int | None = None, cache: str | None = None) -> None:
    """In the child: `synthgen mine` with BM25 candidates, validated and written (the first `queries` queries)."""
    from synthgen.commands.mine import mine
    from synthgen.core.config_load import load_config

    overrides = [f"input.path={folder}", f"output_dir={out}", "run_name=run", "mine.sources={bm25: 1}", "mine.k=4",
                 "mine.range_max=50", "scorer.max_length=128"]
    overrides += [f"input.max_queries={queries}"] if queries else []
    overrides += [f"mine.cache_dir={cache}"] if cache else []
    cfg = load_config(None, overrides)
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:  # resident MiB every 2 s: shows whether memory grows as queries go through
        while not done.wait(2.0):
            with open("/proc/self/statm") as fh:
                samples.append((round(time.perf_counter() - t0, 1), int(fh.read().split()[1]) * 4096 / 2**20))

    threading.Thread(target=sample, daemon=True).start()
    mine(cfg)
    done.set()
    step = max(len(samples) // 12, 1)
    print(json.dumps({"mine_seconds": round(time.perf_counter() - t0, 1), "peak_rss_mib": own_peak_mib(),
                      "rss_timeline": [(t, round(m)) for t, m in samples[::step]]}))


def corpus_folder(docs: int, queries: int, workdir: Path) -> Path:
    """A generated BEIR folder with `docs` passages and at least `queries` queries (written once, then reused)."""
    folder = workdir / f"synthetic-{docs}"
    qfile = folder / "queries.jsonl"
    if not qfile.is_file() or sum(1 for _ in qfile.open()) < queries:
        write_synthetic_beir(folder, docs, queries)
    return folder


def measure(docs: int, queries: int, workdir: Path) -> dict[str, Any]:
    """One child run: `queries` queries over `docs` passages, BM25 index built afresh (a first run)."""
    workdir = workdir.resolve()  # the child runs from the project root
    t0 = time.perf_counter()
    folder = corpus_folder(docs, queries, workdir)
    gen_s = time.perf_counter() - t0
    out, cache = workdir / "out", workdir / "index-cache"
    shutil.rmtree(cache, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.rss", "--child", str(folder), str(out), str(queries),
                           str(cache)], check=False, cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise RuntimeError(f"rss child failed: {proc.stderr[-2000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    run = json.loads((out / "run" / "run.json").read_text())
    return {"docs": docs, "queries": queries, "corpus_mib": round((folder / "corpus.jsonl").stat().st_size / 2**20, 1),
            "corpus_write_seconds": round(gen_s, 1), "mine_seconds": child["mine_seconds"],
            "index_seconds": run["sources"]["bm25"].get("index_seconds"),
            "validate_seconds": round(run["stages"]["validate"]["seconds"], 1),
            "peak_rss_mib": round(child["peak_rss_mib"], 1), "rss_timeline": child["rss_timeline"],
            "kept": run["counts"]["kept"], "candidates": run["counts"]["candidates"]}


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - slope * mx, slope


def bench_rss(docs: int, queries: int, workdir: Path, target_queries: int = 10_000) -> dict[str, Any]:
    """Peak RSS at `queries` and, below `target_queries`, at a quarter of them over the same corpus: the
    per-query slope of the two extrapolates to `target_queries`. At the target itself one run is the
    measurement (its resident-memory timeline shows any growth)."""
    points = [measure(docs, queries, workdir)] if queries >= target_queries else \
        [measure(docs, max(queries // 4, 1), workdir), measure(docs, queries, workdir)]
    if len(points) == 1:
        return {**points[0], "points": points, f"peak_rss_mib_at_{target_queries}_queries": points[0]["peak_rss_mib"],
                "note": f"measured at {queries:,} queries (peak of the child's own memory, VmHWM)"}
    intercept, slope = fit_line([p["queries"] for p in points], [p["peak_rss_mib"] for p in points])
    last = points[-1]
    return {**last, "points": points, "rss_mib_per_1k_queries": round(slope * 1000, 1),
            f"peak_rss_mib_at_{target_queries}_queries": (last["peak_rss_mib"] if queries >= target_queries else None),
            f"extrapolated_rss_mib_at_{target_queries}_queries": round(intercept + slope * target_queries, 1),
            "note": f"measured at {queries:,} and {points[0]['queries']:,} queries; the {target_queries:,}-query "
                    "figure is the straight line through the two points, not a measurement"}


def scaling(docs_list: list[int], queries: int, workdir: Path) -> dict[str, Any]:
    """Time and peak RSS at each corpus size, same queries; fitted exponents (log-log slope) against passages."""
    import math

    rows = [measure(d, queries, workdir) for d in docs_list]
    logd = [math.log(r["docs"]) for r in rows]
    fits = {key: round(fit_line(logd, [math.log(r[key]) for r in rows])[1], 3)
            for key in ("mine_seconds", "index_seconds", "peak_rss_mib") if all(r.get(key) for r in rows)}
    return {"queries": queries, "rows": rows, "exponents": fits}


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="peak RSS and time of `synthgen mine` (BM25) over generated corpora")
    p.add_argument("--child", nargs=4, metavar=("FOLDER", "OUT", "QUERIES", "CACHE"), help=argparse.SUPPRESS)
    p.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=200, help="queries per scaling run")
    p.add_argument("--query-points", type=int, nargs="*", default=[],
                   help="also measure these query counts at the largest corpus (RSS per query)")
    p.add_argument("--workdir", default="outputs/bench/rss")
    args = p.parse_args()
    if args.child:
        folder, out, queries, cache = args.child
        rss_child(folder, out, int(queries), cache)
        return
    workdir = Path(args.workdir)
    result = scaling(args.docs, args.queries, workdir)
    if args.query_points:
        pts = [measure(max(args.docs), q, workdir) for q in args.query_points]
        intercept, slope = fit_line([r["queries"] for r in pts], [r["peak_rss_mib"] for r in pts])
        result["query_points"] = {"rows": pts, "rss_mib_per_1k_queries": round(slope * 1000, 1),
                                  "extrapolated_rss_mib_at_10000_queries": round(intercept + slope * 10_000, 1)}
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
