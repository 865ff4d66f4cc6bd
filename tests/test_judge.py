"""The optional LLM judge: reply parsing, which rows it is asked about, and a real run through the local server."""

import json
import subprocess
import sys

import pytest
from datasets import load_from_disk
from test_validate_cli import CASES

from synthgen.core.config import LLMConfig, ValidateConfig
from synthgen.llm.openai_backend import OpenAIBackend
from synthgen.llm.parse import ParseError
from synthgen.llm.prompt import load_templates
from synthgen.validate.judge import JudgeFilter, parse_judgement


@pytest.mark.parametrize("reply, says", [('{"answers": true}', True), ('{"answers": false}', False),
                                         (" Yes.", True), ("no, it does not", False)])
def test_parse_judgement(reply, says):
    assert parse_judgement(reply) is says


@pytest.mark.parametrize("reply", ['{"answers": "maybe"}', "perhaps", "", None, '{"answer": true}'])
def test_parse_judgement_rejects_other_replies(reply):
    with pytest.raises(ParseError):
        parse_judgement(reply)


def _judge(server, band):
    (template,) = load_templates(None, kind="judge")
    backend = OpenAIBackend(LLMConfig(max_retries=1, seed=0), server.base_url, server.model_name,
                            "json_object_schema", 1, "max_tokens")  # llama-cpp-python ignores max_completion_tokens
    return JudgeFilter(backend, template, ValidateConfig(judge={"enabled": True, "band": band}))


def test_judge_asks_only_about_rows_near_the_threshold(llama_server):
    q, p, n, _ = CASES[0]
    # max_relative 0.95, band 0.15: only difficulties in [0.80, 0.95) go to the LLM
    difficulty = [0.5, 0.81, 0.94, None, 0.95]
    batch = {"query": [q] * 5, "positive": [p] * 5, "negative": [n] * 5, "difficulty": difficulty}
    judge = _judge(llama_server, 0.15)
    judge.setup()
    try:
        reasons = judge.decide(batch)
    finally:
        judge.backend.close()
    assert judge.asked == 2 and judge.failures == 0  # the JSON schema makes every reply parse
    assert reasons[0] is None and reasons[3] is None and reasons[4] is None
    said = [r for r in reasons[1:3] if r is not None]
    assert judge.said_yes == len(said)
    assert all(r.startswith("judge_answers (difficulty=0.8") or r.startswith("judge_answers (difficulty=0.9")
               for r in said)
    # the two rows ask the same question (same query, positive, negative): it is sent once
    assert judge.backend.usage.requests == 1 and judge.backend.usage.completion_tokens > 0


def test_validate_command_with_the_judge(llama_server, tmp_path):
    """Every row that passes the scorer goes to the judge (band 1); its drops land in rejects with the reason."""
    src = tmp_path / "candidates.jsonl"
    with src.open("w") as fh:
        for i, (q, p, n, _) in enumerate(CASES):
            fh.write(json.dumps({"query": q, "positive": p, "negative": n, "strategy": f"case{i}"}) + "\n")
    out = tmp_path / "validated"
    proc = subprocess.run(
        [sys.executable, "-m", "synthgen", "validate", "--input", str(src), "--output", str(out),
         "--set", "validate.min_score=0.1", "--set", "validate.collision=95", "--set", "validate.judge.enabled=true",
         "--set", "validate.judge.band=1.0",
         "--set", f"llm.base_url={llama_server.base_url}", "--set", f"llm.model={llama_server.model_name}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    good = [f"case{i}" for i, c in enumerate(CASES) if c[3] is None]
    judge = stats["judge"]
    # the rows that survive the scorer are exactly the good ones, and each is asked about once
    assert judge["asked"] == len(good) and judge["failures"] == 0
    kept, rejects = load_from_disk(str(out / "kept")), load_from_disk(str(out / "rejects"))
    judged_out = [s for s, r in zip(rejects["strategy"], rejects["reason"]) if r.startswith("judge_answers")]
    assert len(judged_out) == judge["said_answers"] == stats["stages"]["judge"]["rejected"]
    assert sorted(judged_out + list(kept["strategy"])) == sorted(good)
    assert stats["kept"] + stats["rejected"] == len(CASES)
