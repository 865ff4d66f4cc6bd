"""Benchmark helpers: the naive dedup baseline reaches DedupFilter's decisions; the generated corpus loads."""

from __future__ import annotations

from benchmarks.rss import write_synthetic_beir
from benchmarks.dedup_bench import naive_dedup
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
