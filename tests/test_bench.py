"""Benchmark helpers: the naive dedup baseline reaches DedupFilter's decisions; the generated corpus loads."""

from __future__ import annotations

import json

import pytest

from benchmarks.dedup_bench import naive_dedup
from benchmarks.rss import write_synthetic_beir
from synthgen.core.config import ValidateConfig
from synthgen.validate.dedup import DedupFilter


def test_naive_dedup_matches_dedup_filter():
    pos = "The boundary layer separates from the plate when the pressure gradient is adverse."
    negs = ["Heat transfer in a laminar jet is measured at several Mach numbers and compared.",
            "Heat transfer in a laminar jet is measured at several Mach numbers and compared!",  # exact dup
            "Heat transfer in a laminar jet is measured at some Mach numbers and compared.",  # near dup
            pos.upper(),  # copies the positive
            "Buckling of thin cylindrical shells under axial compression is studied in detail."]
    batch = {"query_id": ["q"] * len(negs) + ["r"], "positive": [pos] * len(negs) + [pos],
             "negative": negs + [negs[0]]}
    cfg = ValidateConfig()
    ours = DedupFilter(cfg).decide(batch)
    naive = naive_dedup(batch, cfg.positive_copy, cfg.near_duplicate)
    assert [r is None for r in ours] == [r is None for r in naive] == [True, False, False, False, True, True]
    assert naive[1:4] == ["duplicate", "near_duplicate", "copies_positive"]


def test_synthetic_beir_corpus(tmp_path):
    from synthgen.io.beir import load_beir, load_corpus

    write_synthetic_beir(tmp_path, docs=300, queries=7)
    assert len(load_corpus(tmp_path)) == 300
    pairs = load_beir(tmp_path, "train")
    assert len(pairs["query"]) == 7 and len(set(pairs["positive_id"])) == 7
    for q, p in zip(pairs["query"], pairs["positive"]):  # each query's words come from its positive
        assert set(q.rstrip("?").split()) <= set(p.lower().rstrip(".").split())


def test_bench_table_rows_goals_and_png(tmp_path):
    from benchmarks.table import format_table, table_rows, write_png

    raw = {"dedup": {"synthgen_seconds": 0.3, "naive_seconds": 3.6, "ratio": 12.0},
           "llm": {"error": "ReadTimeout: timed out"},
           "mining": {"cold": {"synthgen_seconds": 70.0, "st_default_seconds": 63.0, "ratio": 0.9},
                      "warm": {"synthgen_seconds": 5.0, "st_default_seconds": 63.0, "ratio": 12.6},
                      "both_warm": {"synthgen_seconds": 5.0, "st_cache_folder_seconds": 0.2, "ratio": 0.04}},
           "rss": {"docs": 1_000_000, "queries": 10_000, "peak_rss_mib": 900.5}}
    rows = {r["stage"]: r for r in table_rows(raw)}
    assert rows["dedup (s)"]["met"] == "yes" and rows["dedup (s)"]["goal"] == ">= 10"
    assert rows["llm"]["synthgen"] == "failed" and rows["llm"]["met"] == "NO"
    assert rows["mining, cold cache (s)"]["met"] == "NO"  # 0.9 < 0.95
    assert rows["mining, warm cache (s)"]["met"] == "yes"
    assert rows["mining, both warm (s)"]["met"] == "-"  # reported, no goal
    rss = rows["mine RSS, 1,000,000 passages / 10,000 queries (MiB)"]
    assert rss["met"] == "yes" and rss["goal"] == "<= 1024" and rss["ratio"] is None
    text = format_table(list(rows.values())).splitlines()
    assert text[0].split("|")[1].strip() == "stage" and len(text) == 2 + len(rows)
    write_png(list(rows.values()), tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_the_rss_child_reports_its_own_peak_not_the_parents(tmp_path):
    """A child's ru_maxrss carries the parent's high-water mark across fork+exec on Linux; the bench reads
    the child's own VmHWM instead."""
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/proc/self/status").is_file():
        pytest.skip("needs Linux /proc")
    ballast = bytearray(400 * 2**20)
    for i in range(0, len(ballast), 4096):  # touch every page: resident in this (parent) process
        ballast[i] = 1
    code = ("import resource, json; from benchmarks.rss import own_peak_mib; "
            "print(json.dumps([own_peak_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    own, inherited = json.loads(out.stdout)
    assert inherited >= 400  # the parent's ballast shows up in ru_maxrss...
    assert own < 200  # ...but not in the child's own peak
    del ballast
