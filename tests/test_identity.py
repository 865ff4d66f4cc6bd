"""Run identity: the run folder changes exactly when something that changes the output changes (one test per rule)."""

import json
import shutil

import pytest

from synthgen.core.config_load import load_config
from synthgen.core.package_data import default_prompts_dir, sample_path
from synthgen.runners.run_identity import resolve_run


def folder(tmp_path, command="generate", *overrides, corpus_only=False):
    cfg = load_config(None, [f"output_dir={tmp_path / 'out'}", *overrides])
    return resolve_run(cfg, command, corpus_only).folder


def test_name_is_command_input_and_hash(tmp_path):
    f = folder(tmp_path)
    assert f.parent == tmp_path / "out"
    prefix, stem, key = f.name.split("-", 2)
    assert (prefix, stem) == ("generate", "sample") and len(key) == 10
    assert folder(tmp_path) == f  # deterministic


def test_mine_and_generate_never_share_a_folder(tmp_path):
    assert folder(tmp_path, "mine").name.startswith("mine-sample-")
    assert folder(tmp_path, "mine") != folder(tmp_path, "generate")


def test_mine_sources_change_the_mine_folder_only(tmp_path):
    a = folder(tmp_path, "mine", "mine.sources={bm25: 1, random: 1}")
    b = folder(tmp_path, "mine", "mine.sources={bm25: 1, dense: 1}")
    assert a != b
    # generate does not mine: its folder ignores mine.*
    assert folder(tmp_path, "generate", "mine.sources={bm25: 1}") == folder(tmp_path, "generate")


@pytest.mark.parametrize("override", [
    "llm.concurrency=16", "llm.timeout_s=5", "llm.max_retries=9", "llm.fail_fast_after=2",
    "llm.price_per_million={prompt: 1, completion: 2}", "llm.server_threads=8", "llm.api_key_env=OTHER",
    "batch_queries=2", "scorer.batch_size=4", "scorer.device=cuda", "mine.batch_size=8", "mine.chunk_size=10",
    "mine.cache_dir=/tmp/elsewhere",
])
@pytest.mark.parametrize("command", ["generate", "mine"])
def test_speed_and_cost_settings_keep_the_folder(tmp_path, override, command):
    assert folder(tmp_path, command, override) == folder(tmp_path, command)


@pytest.mark.parametrize("override", [
    "llm.temperature=0.1", "llm.max_tokens=99", "llm.seed=7", "prompts.negatives_per_prompt=3",
    "prompts.strategies=[topic_near]", "scorer.max_length=64", "scorer.model=some/model",
    "validate.max_relative=0.9", "validate.min_chars=10", "validate.judge.enabled=true", "input.max_queries=3",
    "input.max_passage_chars=200",
])
def test_output_affecting_settings_change_the_folder(tmp_path, override):
    assert folder(tmp_path, "generate", override) != folder(tmp_path, "generate")


def test_mine_folder_follows_scorer_and_validation_not_llm_without_synthetic(tmp_path):
    base = folder(tmp_path, "mine")
    assert folder(tmp_path, "mine", "validate.max_relative=0.8") != base
    assert folder(tmp_path, "mine", "scorer.max_length=64") != base
    assert folder(tmp_path, "mine", "llm.temperature=0.1") == base  # no synthetic source: the LLM is unused
    syn = "mine.sources={synthetic: 1, bm25: 1}"
    assert folder(tmp_path, "mine", syn, "llm.temperature=0.1") != folder(tmp_path, "mine", syn)


def test_scorer_kind_counts_when_it_is_used(tmp_path):
    m = "scorer.model=some/model"
    assert folder(tmp_path, "generate", m, "scorer.kind=cross-encoder") != folder(tmp_path, "generate", m)
    # without scorer.model the packaged bi-encoder scores whatever `kind` says
    assert folder(tmp_path, "generate", "scorer.kind=cross-encoder") == folder(tmp_path, "generate")


def test_external_server_model_name_counts_not_its_url(tmp_path):
    a = folder(tmp_path, "generate", "llm.base_url=http://127.0.0.1:8000/v1", "llm.model=m1")
    assert folder(tmp_path, "generate", "llm.base_url=http://127.0.0.1:8001/v1", "llm.model=m1") == a
    assert folder(tmp_path, "generate", "llm.base_url=http://127.0.0.1:8000/v1", "llm.model=m2") != a


def test_template_text_counts_only_for_chosen_templates(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir(), prompts)
    chosen = ["prompts.strategies=[topic_near]", f"prompts.dir={prompts}"]
    before = folder(tmp_path, "generate", *chosen)
    other = prompts / "minimal_edit.j2"
    other.write_text(other.read_text() + "\nBe brief.\n")
    assert folder(tmp_path, "generate", *chosen) == before  # not used by this run
    mine = prompts / "topic_near.j2"
    mine.write_text(mine.read_text() + "\nBe brief.\n")
    assert folder(tmp_path, "generate", *chosen) != before


def test_input_content_counts_not_its_location(tmp_path):
    a, b = tmp_path / "a" / "sample", tmp_path / "b" / "sample"
    shutil.copytree(sample_path(), a)
    shutil.copytree(sample_path(), b)
    fa, fb = folder(tmp_path, "generate", f"input.path={a}"), folder(tmp_path, "generate", f"input.path={b}")
    assert fa == fb
    queries = b / "queries.jsonl"
    first, rest = queries.read_text().split("\n", 1)
    row = json.loads(first)
    row["text"] += "?"
    queries.write_text(json.dumps(row) + "\n" + rest)
    assert folder(tmp_path, "generate", f"input.path={b}") != fa


def test_why_new_or_reused(tmp_path):
    cfg = load_config(None, [f"output_dir={tmp_path}"])
    first = resolve_run(cfg, "generate")
    assert first.status == "new" and "no earlier run" in first.why
    first.save()
    again = resolve_run(cfg, "generate")
    assert again.status == "reused" and again.folder == first.folder and "resuming" in again.why
    changed = resolve_run(load_config(None, [f"output_dir={tmp_path}", "validate.max_relative=0.8"]), "generate")
    assert changed.status == "new" and changed.folder != first.folder
    assert str(first.folder) in changed.why and "validate.max_relative" in changed.why


def test_run_name_with_other_settings_says_it_replaces(tmp_path):
    cfg = load_config(None, [f"output_dir={tmp_path}", "run_name=r"])
    resolve_run(cfg, "generate").save()
    other = resolve_run(load_config(None, [f"output_dir={tmp_path}", "run_name=r", "llm.seed=3"]), "generate")
    assert other.folder == tmp_path / "r" and "llm.seed" in other.why and "replaced" in other.why
