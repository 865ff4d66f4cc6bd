"""Runs never overwrite each other, reuse what they can, and account for every row (real CLI, real models)."""

import json
import logging

from datasets import load_from_disk

from synthgen.cli import main
from synthgen.llm.generate import GenerateStep

MINE = ["mine", "--set", "input.max_queries=4", "--set", "mine.k=2", "--set", "scorer.max_length=64"]


def mine_run(tmp_path, caplog, capsys, *overrides):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="synthgen"):
        assert main([*MINE, "--set", f"output_dir={tmp_path}", *overrides]) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1]
    logs = [r.getMessage() for r in caplog.records if r.name.startswith("synthgen")]
    return tmp_path / folder.split("/")[-1], json.loads((tmp_path / folder.split("/")[-1] / "run.json").read_text()), logs


def test_mine_runs_with_other_sources_or_thresholds_get_their_own_folders(tmp_path, caplog, capsys):
    a, info_a, logs = mine_run(tmp_path, caplog, capsys, "--set", "mine.sources={bm25: 1, random: 1}")
    assert a.name.startswith("mine-sample-")
    assert logs[0] == f"run folder: {a} (new)" and "no earlier run" in logs[1]  # the first log lines
    b, _, logs = mine_run(tmp_path, caplog, capsys, "--set", "mine.sources={bm25: 1}")
    assert b != a and logs[0] == f"run folder: {b} (new)" and "mine.sources" in logs[1] and str(a) in logs[1]
    assert json.loads((a / "run.json").read_text()) == info_a  # the first run is untouched
    # Only a threshold: a new folder, but every score comes from the shared cache.
    c, info_c, logs = mine_run(tmp_path, caplog, capsys, "--set", "mine.sources={bm25: 1, random: 1}",
                               "--set", "validate.max_relative=0.8")
    assert c not in (a, b) and "validate.max_relative" in logs[1]
    assert info_c["scorer_pairs"]["scored"] == 0 and info_c["scorer_pairs"]["cache_hits"] > 0
    # near_positive compares passages with each other: their embeddings come back from the cache, not the model.
    assert info_a["scorer_pairs"]["embeddings_from_store"] == 0 < info_c["scorer_pairs"]["embeddings_from_store"]
    assert info_c["counts"]["candidates"] == info_a["counts"]["candidates"]
    # The same command again resumes its folder and says so.
    again, _, logs = mine_run(tmp_path, caplog, capsys, "--set", "mine.sources={bm25: 1, random: 1}",
                              "--set", "llm.concurrency=9")  # not output-affecting
    assert again == a and logs[0] == f"run folder: {a} (reused)" and "resuming" in logs[1]


def test_not_applicable_rows_pass_through_generation():
    rows = {"query_id": ["q"], "query": ["q?"], "positive_id": ["p"], "positive": ["One sentence."],
            "strategy": ["answer_removed"], "template_hash": ["h"], "messages": ["[]"], "engine": ["template"],
            "source": ["synthetic"], "reason": ["not_applicable (answer_removed: nothing left of the positive)"]}
    out = GenerateStep(backend=None)(rows)  # no engine is touched for such a row
    assert out["reason"] == rows["reason"] and out["negative"] == [None] and out["source"] == ["synthetic"]


def test_mine_with_the_llm_and_the_default_strategies(llama_server, tmp_path, caplog, capsys):
    folder, info, _ = mine_run(tmp_path, caplog, capsys, "--set", "mine.sources={synthetic: 1, bm25: 1}",
                               "--set", "input.max_queries=2", "--set", "llm.max_tokens=64",
                               "--set", f"llm.base_url={llama_server.base_url}",
                               "--set", f"llm.model={llama_server.model_name}")
    counts = info["counts"]
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["shared"]
    assert set(info["templates"]) == {"answer_removed", "scorer_guided_edit", "minimal_edit", "topic_near"}
    rejects = load_from_disk(str(folder / "rejects"))
    triplets = load_from_disk(str(folder / "triplets"))
    assert None not in rejects["source"] and None not in triplets["source"]
    strategies = set(rejects["strategy"]) | set(triplets["strategy"])
    assert {"answer_removed", "minimal_edit"} <= strategies  # every strategy produced rows
    assert "| None |" not in (folder / "README.md").read_text()  # the card has no 'None' source row
    assert info["llm"]["requests"] >= 1
