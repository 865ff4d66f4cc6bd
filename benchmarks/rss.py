"""Peak RSS of `synthgen mine` over a generated BEIR corpus, measured in a child process."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
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


def rss_child(folder: str, out: str) -> None:
    """In the child: `synthgen mine` with BM25 candidates, validated and written."""
    from synthgen.commands.mine import mine
    from synthgen.core.config_load import load_config

    cfg = load_config(None, [f"input.path={folder}", f"output_dir={out}", "run_name=run",
                             "mine.sources={bm25: 1}", "mine.k=4", "mine.range_max=50", "scorer.max_length=128"])
    t0 = time.perf_counter()
    mine(cfg)
    print(json.dumps({"mine_seconds": round(time.perf_counter() - t0, 1),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_rss(docs: int, queries: int, workdir: Path) -> dict[str, Any]:
    workdir = workdir.resolve()  # the child runs from the project root
    folder = workdir / f"synthetic-{docs}"
    t0 = time.perf_counter()
    if not (folder / "corpus.jsonl").is_file():
        write_synthetic_beir(folder, docs, queries)
    gen_s = time.perf_counter() - t0
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--rss-child", str(folder), str(workdir / "out")], check=False,
                          cwd=Path(__file__).resolve().parents[1],
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
