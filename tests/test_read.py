import json

import pytest

from synthgen.config import InputConfig
from synthgen.read import LoaderError, load_beir, load_input, load_pairs_jsonl
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
