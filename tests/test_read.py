import json

import pytest

from synthgen.core.config import InputConfig
from synthgen.core.errors import LoaderError
from synthgen.io.beir import load_beir
from synthgen.io.read import load_input, load_pairs_jsonl
from tests.conftest import shared_dataset


def write_beir(root, corpus=None, queries=None, qrels="query-id\tcorpus-id\tscore\nq1\tp1\t1\n"):
    (root / "qrels").mkdir(parents=True)
    corpus = corpus if corpus is not None else [{"_id": "p1", "title": "T", "text": "Passage one."}]
    queries = queries if queries is not None else [{"_id": "q1", "text": "query one?"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels" / "train.tsv").write_text(qrels)
    return root


def test_embedded_sample_goes_through_the_beir_loader():
    pairs = load_input(InputConfig())
    assert len(set(pairs["query_id"])) == 20
    assert len(pairs["query"]) == 20
    assert pairs["query"][0] == "How do honeybees tell each other where flowers are?"
    assert pairs["positive_id"][0] == "bee-01"
    assert pairs["positive"][0].startswith("Honeybee waggle dance. A forager")


def test_max_queries():
    assert len(load_input(InputConfig(max_queries=3))["query"]) == 3


def test_beir_folder(tmp_path):
    pairs = load_beir(write_beir(tmp_path / "b"))
    assert pairs == {"query_id": ["q1"], "query": ["query one?"], "positive_id": ["p1"], "positive": ["T. Passage one."]}


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv"])
def test_beir_missing_file_is_named(tmp_path, missing):
    root = write_beir(tmp_path / "b")
    (root / missing).unlink()
    with pytest.raises(LoaderError, match=f"missing file: .*{missing}"):
        load_input(InputConfig(path=str(root)))


def test_beir_missing_column_is_named(tmp_path):
    root = write_beir(tmp_path / "b", corpus=[{"id": "p1", "text": "x"}])
    with pytest.raises(LoaderError, match=r"corpus.jsonl:1: missing column '_id'"):
        load_beir(root)


def test_beir_bad_qrels_header(tmp_path):
    root = write_beir(tmp_path / "b", qrels="q1\tp1\t1\n")
    with pytest.raises(LoaderError, match="expected header"):
        load_beir(root)


def test_beir_qrels_to_missing_ids_are_skipped_then_error_if_nothing_left(tmp_path):
    root = write_beir(tmp_path / "b", qrels="query-id\tcorpus-id\tscore\nq1\tp9\t1\n")
    assert load_beir(root)["query"] == []
    with pytest.raises(LoaderError, match="no usable"):
        load_input(InputConfig(path=str(root)))


def test_pairs_jsonl(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"q": "what?", "pos": "this."}\n\n{"q": "who?", "pos": "them.", "query_id": "x"}\n')
    pairs = load_pairs_jsonl(f, "q", "pos")
    assert pairs["query"] == ["what?", "who?"] and pairs["positive"] == ["this.", "them."]
    assert pairs["query_id"] == ["q1", "x"]


def test_pairs_missing_column_and_bad_json(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text('{"query": "what?"}\n')
    with pytest.raises(LoaderError, match=r"pairs.jsonl:1: missing column 'positive'"):
        load_input(InputConfig(path=str(f)))
    f.write_text('{"query": "what?", "positive": "x"}\n{not json\n')
    with pytest.raises(LoaderError, match=r"pairs.jsonl:2: invalid JSON"):
        load_input(InputConfig(path=str(f)))
    with pytest.raises(LoaderError, match="missing file"):
        load_input(InputConfig(path=str(tmp_path / "absent.jsonl")))


def test_cranfield_train_split():
    pairs = load_input(InputConfig(path=str(shared_dataset("cranfield")), split="train"))
    assert len(set(pairs["query_id"])) == 150
    assert len(pairs["query"]) > 150  # several positives per query


# --- more formats and bad input (issue: inputs) --------------------------------------------------

from synthgen.io.input_files import InputStats
from synthgen.io.read import clean_corpus, detect_format, load_input_with_stats  # noqa: E402


def test_hf_save_to_disk_with_column_mapping(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"question": ["what?", "who?"], "answer": ["this.", "them."], "qid": ["a", "b"]}) \
        .save_to_disk(str(tmp_path / "ds"))
    cfg = InputConfig(path=str(tmp_path / "ds"), query_field="question", positive_field="answer", query_id_field="qid")
    assert detect_format(cfg, tmp_path / "ds") == "hf"
    pairs, _ = load_input_with_stats(cfg)
    assert pairs["query"] == ["what?", "who?"] and pairs["positive"] == ["this.", "them."]
    assert pairs["query_id"] == ["a", "b"] and pairs["positive_id"] == ["p0", "p1"]


def test_hf_parquet_and_missing_column(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"query": ["q1"], "pos": ["p1"]}).to_parquet(str(tmp_path / "d.parquet"))
    pairs, _ = load_input_with_stats(InputConfig(path=str(tmp_path / "d.parquet"), positive_field="pos"))
    assert pairs["positive"] == ["p1"]
    with pytest.raises(LoaderError, match=r"missing column 'positive' \(have: query, pos\)"):
        load_input_with_stats(InputConfig(path=str(tmp_path / "d.parquet")))


def test_bad_rows_are_skipped_with_counts(tmp_path):
    root = write_beir(
        tmp_path / "b",
        corpus=[{"_id": "p1", "text": "Passage one is fine."}, {"_id": "p1", "text": "duplicate id"},
                {"_id": "p2", "text": ""}, {"_id": "p3", "text": "x" * 500}],
        queries=[{"_id": "q1", "text": "one?"}, {"_id": "q2", "text": "two?"}, {"_id": "q3", "text": "three?"}],
        qrels="query-id\tcorpus-id\tscore\nq1\tp1\t1\nq2\tp2\t1\nq3\tp3\t1\nq1\tp9\t1\n")
    with (root / "queries.jsonl").open("ab") as fh:
        fh.write(b'{"_id": "q4", "text": "caf\xe9 latin-1"}\n')  # not UTF-8
    pairs, stats = load_input_with_stats(InputConfig(path=str(root), max_passage_chars=100))
    assert pairs["query_id"] == ["q1", "q3"]
    assert pairs["positive"][0] == "Passage one is fine." and len(pairs["positive"][1]) == 100
    assert stats.as_dict() == {"skipped": {"invalid_utf8": 1, "duplicate_id": 1, "empty_text": 1,
                                           "qrels_missing_id": 2}, "truncated": 1}


def test_bare_corpus_forms(tmp_path):
    (tmp_path / "c.txt").write_text("first passage here\n\nsecond passage here\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("file passage a")
    (docs / "b.txt").write_bytes(b"\xff\xfe broken")
    (tmp_path / "c.jsonl").write_text('{"id": "x", "body": "json passage"}\n{"id": "x", "body": "dup"}\n'
                                      '{"id": "y", "body": ""}\n')
    stats = InputStats()
    assert list(clean_corpus(InputConfig(path=str(tmp_path / "c.txt"), format="corpus"), stats)) == [
        ("line1", "first passage here"), ("line3", "second passage here")]
    assert list(clean_corpus(InputConfig(path=str(docs), format="corpus"), stats)) == [("a", "file passage a")]
    cfg = InputConfig(path=str(tmp_path / "c.jsonl"), format="corpus", text_field="body", id_field="id")
    assert list(clean_corpus(cfg, stats)) == [("x", "json passage")]
    assert stats.as_dict()["skipped"] == {"invalid_utf8": 1, "duplicate_id": 1, "empty_text": 1}
    assert detect_format(InputConfig(path=str(tmp_path / "c.txt")), tmp_path / "c.txt") == "corpus"
    with pytest.raises(LoaderError, match="is a bare corpus"):
        load_input_with_stats(InputConfig(path=str(docs)))


def test_beir_streaming_keeps_only_judged_passages(tmp_path, monkeypatch):
    corpus = [{"_id": f"p{i}", "text": f"passage {i}"} for i in range(1000)]
    root = write_beir(tmp_path / "b", corpus=corpus, qrels="query-id\tcorpus-id\tscore\nq1\tp999\t1\n")
    pairs, _ = load_input_with_stats(InputConfig(path=str(root)))
    assert pairs["positive"] == ["passage 999"]
