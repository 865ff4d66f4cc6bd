"""Corpus-only mode: synthetic queries and the round-trip filter."""

import json
import subprocess
import sys

import pytest

from synthgen.core.config import ScorerConfig
from synthgen.core.package_data import sample_path
from synthgen.llm.parse import ParseError
from synthgen.llm.queries import parse_query, round_trip
from synthgen.negatives.corpus import Corpus
from synthgen.validate.scorer import BiEncoderScorer


def test_parse_query():
    assert parse_query('{"query": "  why is the\\nsky blue?  "}') == "why is the sky blue?"
    for bad in ("", '{"q": "x"}', '{"query": "a"}', "[1]"):
        with pytest.raises(ParseError):
            parse_query(bad)


def test_round_trip_keeps_consistent_queries(minilm):
    rows = [json.loads(line) for line in (sample_path() / "corpus.jsonl").read_text().splitlines()]
    corpus = Corpus([r["_id"] for r in rows], [f"{r['title']}. {r['text']}" for r in rows])
    src = [r["_id"] for r in rows].index("tid-03")
    queries = ["Why does the Bay of Fundy have the highest tidal range in the world?",  # finds tid-03
               "How long does a honeybee queen live?"]  # about bees, not tid-03
    reasons = round_trip(queries, [src, src], corpus, BiEncoderScorer(minilm, "m", ScorerConfig()), top_k=1, depth=10)
    assert reasons[0] is None
    assert reasons[1] is not None and reasons[1].split(" ")[0] in ("not_retrieved", "inconsistent")


def test_corpus_only_generate_end_to_end(tmp_path):
    cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}", "--set", "run_name=c",
           "--set", f"input.path={sample_path() / 'corpus.jsonl'}", "--set", "input.format=corpus",
           "--set", "queries.max_passages=4", "--set", "queries.strategies=[query_question,query_keyword]",
           "--set", "prompts.strategies=[answer_removed]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    sq = run["input"]["synthetic_queries"]
    assert sq["passages"] == 4 and sq["written"] + sq["failed"] == 8
    assert sq["kept"] + sum(sq["dropped_by_reason"].values()) == sq["written"]
    assert run["input"]["queries"] == sq["kept"]
    # Queries that failed or missed the round trip are rows in rejects/ (stage "queries"), not silent losses.
    from datasets import load_from_disk

    rejects = load_from_disk(str(tmp_path / "c" / "rejects"))
    dropped = [r for r in rejects if r["stage"] == "queries"]
    assert len(dropped) == sq["written"] - sq["kept"] + sq["failed"] == run["counts"]["queries_dropped"]
    assert all(r["source"] == "synthetic_query" and r["reason"] for r in dropped)
    counts = run["counts"]
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["not_applicable"] + len(dropped)
    assert run["requests_sent"] == 0  # answer_removed writes negatives without the LLM
    assert run["llm"]["requests"] >= 8  # the 8 query prompts
    # A rerun reads the synthetic queries back from the run's cache: no request at all.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((tmp_path / "c" / "run.json").read_text())
    assert again["llm"]["requests"] == 0
    assert again["input"]["synthetic_queries"]["kept"] == sq["kept"]
