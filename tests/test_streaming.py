"""The local runner streams rows to disk (RowSink): the same datasets as collecting them, parts that survive a
kill -9 complete, and a rerun that finishes with the same output."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
from datasets import load_from_disk

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import batch_len
from synthgen.core.step import Filter, Reject
from synthgen.io.row_sink import PARTS, TEXT_COLUMNS, RowSink
from synthgen.io.write import write_run
from synthgen.runners.local import Pipeline
from synthgen.validate.quality import QualityFilter


class DropOddIds(Filter):
    name = "odd"
    reads = ("negative_id",)

    def decide(self, batch):
        return [Reject("odd_id", "odd id {n}", n=int(n[1:])) if int(n[1:]) % 2 else None for n in batch["negative_id"]]


def _candidates():
    positive = "The waggle dance tells other bees the direction and distance of flowers from the hive."
    negatives = ["Drones are male honeybees that develop from unfertilised eggs and do not forage.",
                 "", "As an AI language model I cannot write this passage.",
                 "Worker bees build wax combs of hexagonal cells to store honey and raise brood."]
    rows = {k: [] for k in ("query_id", "query", "positive_id", "positive", "negative", "negative_id", "source",
                            "strategy")}
    for q in range(5):
        for j, neg in enumerate(negatives):
            for key, value in (("query_id", f"q{q}"), ("query", f"How do bees find flowers? ({q})"),
                               ("positive_id", f"p{q}"), ("positive", positive), ("negative", neg),
                               ("negative_id", f"d{q * 4 + j}"), ("source", "bm25"), ("strategy", "bm25[0:50]")):
                rows[key].append(value)
    return rows


def _rows(folder):
    return [dict(r) for r in load_from_disk(str(folder))]


def test_streamed_outputs_equal_collected_outputs(tmp_path):
    rows = _candidates()
    steps = lambda: [QualityFilter(ValidateConfig()), DropOddIds()]  # noqa: E731
    with Pipeline(steps()) as collected:
        kept, rejects = collected.run_all(rows, 2, desc="t")
    write_run(tmp_path / "a", kept, rejects)
    sink = RowSink(tmp_path / "b")
    with Pipeline(steps()) as streamed:
        light_kept, light_rejects = streamed.run_all(rows, 2, desc="t", sink=sink)
    assert sink.finish(tmp_path / "b") == (sum(map(batch_len, kept)), sum(batch_len(b) for _, b in rejects))
    for name in ("triplets", "rejects"):
        assert _rows(tmp_path / "b" / name) == _rows(tmp_path / "a" / name)  # same rows, same order
    assert len(_rows(tmp_path / "b" / "rejects")) == 15 and {r["rule"] for r in _rows(tmp_path / "b" / "rejects")} \
        == {"empty", "meta_text", "odd_id"}
    assert not (tmp_path / "b" / PARTS).exists()
    # What the runner keeps in memory: the report's columns, no texts.
    assert [b["negative_id"] for b in light_kept] == [b["negative_id"] for b in kept]
    assert [(s, b["rule"]) for s, b in light_rejects] == [(s, b["rule"]) for s, b in rejects]
    assert not any(c in b for b in light_kept + [b for _, b in light_rejects] for c in TEXT_COLUMNS)


def _mine(out, cache):
    return [sys.executable, "-m", "synthgen", "mine", "--set", f"output_dir={out}", "--set", "run_name=r",
            "--set", "mine.sources={bm25: 2}", "--set", f"mine.cache_dir={cache}", "--set", "batch_queries=1",
            "--set", "input.max_queries=8", "--set", "scorer.max_length=64"]


def _same_value(x, y, key):
    if isinstance(x, float):
        assert abs(x - y) < 1e-5, key
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), key
        for k in x:
            _same_value(x[k], y[k], f"{key}.{k}")
    else:
        assert x == y, key


def _same_rows(a, b):
    """Equal rows; scores (also those inside `details`) to 1e-5: a batch encodes with float noise."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for key in x:
            if key == "details" and x[key]:
                _same_value(json.loads(x[key]), json.loads(y[key]), key)
            else:
                _same_value(x[key], y[key], key)


def test_kill9_leaves_complete_parts_and_a_rerun_gives_the_same_output(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    clean = subprocess.run(_mine(tmp_path / "clean", tmp_path / "cache"), capture_output=True, text=True,
                           timeout=900, env=env)
    assert clean.returncode == 0, clean.stderr[-3000:]

    parts = tmp_path / "killed" / "r" / PARTS / "kept"
    proc = subprocess.Popen(_mine(tmp_path / "killed", tmp_path / "cache"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 600
    while len(list(parts.glob("*.parquet"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(parts.glob("*.parquet"))
    assert 3 <= len(done) < 8, "the kill must land mid-run"
    assert not (tmp_path / "killed" / "r" / "triplets").exists()
    # Every part on disk is complete and holds exactly the rows the clean run wrote for those queries.
    written = [r for p in done for r in pq.read_table(p).to_pylist()]
    clean_kept = _rows(tmp_path / "clean" / "r" / "triplets")
    _same_rows(written, clean_kept[:len(written)])
    assert {r["query_id"] for r in written} == {r["query_id"] for r in clean_kept[:len(written)]}

    rerun = subprocess.run(_mine(tmp_path / "killed", tmp_path / "cache"), capture_output=True, text=True,
                           timeout=900, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name in ("triplets", "rejects"):
        _same_rows(_rows(tmp_path / "killed" / "r" / name), _rows(tmp_path / "clean" / "r" / name))
    report = json.loads((tmp_path / "killed" / "r" / "run.json").read_text())
    clean_report = json.loads((tmp_path / "clean" / "r" / "run.json").read_text())
    assert report["counts"]["kept"] == clean_report["counts"]["kept"] > 0
    assert report["counts"]["rejected_by_rule"] == clean_report["counts"]["rejected_by_rule"]
    assert not (tmp_path / "killed" / "r" / PARTS).exists()
