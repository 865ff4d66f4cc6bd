"""End to end with real parts: the embedded llama.cpp server, the packaged SmolLM2 model, MiniLM scorer."""

import json
import subprocess
import sys

from datasets import load_from_disk

from synthgen.core.config import LLMConfig
from synthgen.llm.generate import GenerateStep
from synthgen.llm.openai_backend import OpenAIBackend
from synthgen.validate.degeneracy import degeneracy_reason


def test_generate_cli_end_to_end(tmp_path):
    cmd = [sys.executable, "-m", "synthgen", "generate",
           "--set", f"output_dir={tmp_path}", "--set", "run_name=e2e",
           "--set", "input.max_queries=4", "--set", "llm.max_tokens=200",
           "--set", "prompts.strategies=[answer_removed,minimal_edit,topic_near]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "e2e"
    assert proc.stdout.strip().splitlines()[-1] == str(folder)

    triplets = load_from_disk(str(folder / "triplets"))
    rejects = load_from_disk(str(folder / "rejects"))
    assert triplets.column_names[:3] == ["anchor", "positive", "negative"]
    assert {"strategy", "model", "template_hash", "positive_score", "negative_score"} <= set(triplets.column_names)
    assert "reason" in rejects.column_names and all(rejects["reason"])
    # answer_removed needs no model, so the run keeps rows whatever the 135M model writes.
    assert len(triplets) >= 1
    for row in triplets:
        assert row["negative"].strip() != row["positive"].strip()
        assert row["negative_score"] < row["positive_score"]
        assert degeneracy_reason(row["negative"]) is None  # no meta-talk, code debris, loops or cut-offs kept
        expected_model = "template" if row["strategy"] == "answer_removed" else "SmolLM2-135M-Instruct-Q4_1"
        assert row["model"] == expected_model

    run = json.loads((folder / "run.json").read_text())
    counts = run["counts"]
    assert counts["prompts"] + counts["not_applicable"] == 4 * 3
    assert counts["kept"] == len(triplets) and counts["rejected"] == len(rejects)
    # Every row is accounted for: candidates from the model or template, plus prompts that did not apply.
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["not_applicable"]
    assert sum(v["kept"] + v["rejected"] for v in counts["per_strategy"].values()) == counts["kept"] + counts["rejected"]
    assert run["llm"]["requests"] >= 6 and run["llm"]["completion_tokens"] > 0
    assert run["config"]["input"]["max_queries"] == 4
    assert "datasets" in run["versions"] and "scorer" in run


def test_malformed_output_is_retried_then_recorded(llama_server):
    # No schema and 4 tokens: the model cannot finish a JSON object, so every attempt fails to parse.
    cfg = LLMConfig(max_tokens=4, max_retries=1, response_format="none")
    backend = OpenAIBackend(cfg, llama_server.base_url, llama_server.model_name, "none", 2, "max_tokens")
    step = GenerateStep(backend)
    step.setup()
    try:
        out = step({"query_id": ["q"], "query": ["Why is the sky blue?"], "positive_id": ["p"],
                    "positive": ["Rayleigh scattering."], "strategy": ["s"], "template_hash": ["h"],
                    "messages": [json.dumps([{"role": "user", "content": "Say hello in JSON."}])]})
    finally:
        step.close()
    assert out["negative"] == [None]
    assert out["reason"][0].startswith("generation_failed (ParseError")
    assert backend.usage.requests == 2 and backend.usage.retries == 1 and backend.usage.failures == 1


def test_unreachable_server_is_recorded_not_raised():
    cfg = LLMConfig(max_retries=1, timeout_s=2)
    backend = OpenAIBackend(cfg, "http://127.0.0.1:9/v1", "m", "json_schema", 2)
    try:
        (comp,) = backend.complete([[{"role": "user", "content": "hi"}]])
    finally:
        backend.close()
    assert comp.passages is None and comp.error.startswith("APIConnectionError")
    assert backend.usage.failures == 1 and backend.usage.requests == 2


def test_server_stops_on_exit():
    from synthgen.llm.server import LocalLlamaServer

    with LocalLlamaServer() as srv:
        proc = srv.proc
        assert proc.poll() is None
    assert proc.poll() is not None
