"""runner: ray reads its input with ray.data readers (read_json, read_csv + joins for BEIR, read_parquet,
from_huggingface) and normalises the rows as the local reader does: the same pairs, in the same order, with the
same skip counts."""

from __future__ import annotations

import json

import pytest

from synthgen.core.config_load import load_config
from synthgen.io.read import load_input_with_stats

ray = pytest.importorskip("ray", reason="runner: ray needs `pip install 'synthgen[ray]'` (make install does it)")

from test_ray_runner import ray_cluster  # noqa: E402,F401 - the fixture is shared


def _both(*overrides: str):
    from synthgen.runners.ray_read import read_pairs_on_ray

    cfg = load_config(None, list(overrides)).input
    local, local_stats = load_input_with_stats(cfg)
    on_ray, ray_stats = read_pairs_on_ray(cfg)
    assert on_ray == local  # every column, row for row, in order
    assert ray_stats.as_dict() == local_stats.as_dict()
    return local, local_stats.as_dict()


def test_sample_beir_folder_reads_the_same(ray_cluster):
    pairs, _ = _both()  # the packaged sample: a BEIR folder
    assert len(pairs["query_id"]) == 20 and len(set(pairs["query_id"])) == 20


def test_beir_skips_are_counted_alike(tmp_path, ray_cluster):
    """Judgements to a missing query, a missing passage and an empty passage; a zero-score judgement."""
    (tmp_path / "qrels").mkdir()
    corpus = [{"_id": "d1", "title": "Honeybees", "text": "Bees dance to point at flowers."},
              {"_id": "d2", "text": "Queens live for years."}, {"_id": "d3", "text": "  "}]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how do bees talk"}) + "\n"
                                            + json.dumps({"_id": "q2", "text": "how long do queens live"}) + "\n")
    (tmp_path / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq2\td2\t1\nq1\td1\t1\nq9\td1\t1\nq1\td7\t1\nq1\td3\t1\nq2\td1\t0\n")
    pairs, stats = _both(f"input.path={tmp_path}")
    assert pairs["query_id"] == ["q2", "q1"] and pairs["positive"][1] == "Honeybees. Bees dance to point at flowers."
    assert stats["skipped"] == {"qrels_missing_id": 3, "empty_text": 1}


def test_parquet_and_jsonl_and_saved_dataset_read_the_same(tmp_path, ray_cluster):
    from datasets import Dataset

    rows = [{"query": f"question {i}", "positive": "" if i == 3 else f"answer {i} " * (3 * i + 1),
             **({"query_id": f"Q{i % 4}"} if i % 2 else {})} for i in range(10)]
    rows[1]["positive_id"] = "P1"
    rows.append(dict(rows[1]))  # a repeated pair (same ids)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs, stats = _both(f"input.path={jsonl}", "input.max_passage_chars=100", "input.max_queries=5")
    # Ids from the rows where given, else the line number; empties, repeats, truncation as locally.
    assert pairs["query_id"][:2] == ["q1", "Q1"] and stats["truncated"] > 0
    assert stats["skipped"] == {"empty_text": 1, "duplicate_pair": 1}

    table = [{"query": r["query"], "positive": r["positive"], "query_id": r.get("query_id", "")} for r in rows]
    Dataset.from_list(table).to_parquet(str(tmp_path / "pairs.parquet"))
    _both(f"input.path={tmp_path / 'pairs.parquet'}")
    Dataset.from_list(table).save_to_disk(str(tmp_path / "saved"))
    pairs, _ = _both(f"input.path={tmp_path / 'saved'}")
    assert pairs["positive_id"][0] == "p0"  # no positive_id column: the row number, as locally


def test_a_line_ray_data_cannot_read_falls_back_to_the_local_reader(tmp_path, ray_cluster, caplog):
    """A raw invalid-UTF-8 line stops pyarrow's reader; the run reads the file with synthgen's reader instead,
    which skips and counts it (as locally); broken JSON is the same one-line error as locally."""
    from synthgen.core.errors import LoaderError
    from synthgen.runners.execute import read_pairs

    path = tmp_path / "pairs.jsonl"
    good = [json.dumps({"query": f"q{i}", "positive": f"passage {i} about tides"}).encode() for i in range(3)]
    path.write_bytes(b"\n".join([good[0], b'{"query": "\xff\xfe broken", "positive": "x"}', good[1], good[2]]) + b"\n")
    cfg = load_config(None, [f"input.path={path}", "runner=ray"])
    pairs, stats = read_pairs(cfg)
    local, local_stats = load_input_with_stats(cfg.input)
    assert pairs == local and stats.as_dict() == local_stats.as_dict()
    assert pairs["query"] == ["q0", "q1", "q2"] and stats.as_dict()["skipped"] == {"invalid_utf8": 1}
    assert "reading it with synthgen's reader instead" in caplog.text

    path.write_bytes(b"\n".join([good[0], b"{not json", good[1]]) + b"\n")
    with pytest.raises(LoaderError) as on_ray:
        read_pairs(cfg)
    with pytest.raises(LoaderError) as local_error:
        load_input_with_stats(cfg.input)
    assert str(on_ray.value) == str(local_error.value) and ":2: invalid JSON" in str(on_ray.value)
