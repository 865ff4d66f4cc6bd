"""Server faults through a fault-injecting proxy in front of the real local llama.cpp server."""

import json
import subprocess
import sys

import pytest

from synthgen.core.config import LLMConfig
from synthgen.llm.openai_backend import OpenAIBackend
from tests.fault_proxy import KINDS, MORE_KINDS, FaultProxy

PROMPT = [{"role": "user", "content": "Write one sentence about ocean tides. Return JSON: {\"passages\": [\"...\"]}"}]


# MORE_KINDS: 408 and 409 are transient too, a client must retry them like 429 and 5xx.
@pytest.mark.parametrize("kind", KINDS + MORE_KINDS)
def test_each_fault_is_retried_then_succeeds(llama_server, kind):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=2, kinds=(kind,), delay_s=31.0) as proxy:  # fault on the 1st request only
        cfg = LLMConfig(max_tokens=64, max_retries=2, timeout_s=30.0)
        backend = OpenAIBackend(cfg, proxy.base_url, llama_server.model_name, "json_object_schema", 1, "max_tokens")
        try:
            (comp,) = backend.complete([PROMPT])
        finally:
            backend.close()
    assert proxy.faults[kind] == 1
    assert comp.error is None and comp.passages, comp.error
    assert backend.usage.retries == 1 and backend.usage.requests == 2 and backend.usage.failures == 0


def test_run_through_20_percent_faults_accounts_for_everything(llama_server, tmp_path):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=5, delay_s=16.0) as proxy:
        cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}", "--set", "run_name=f",
               "--set", f"llm.base_url={proxy.base_url}", "--set", f"llm.model={llama_server.model_name}",
               "--set", "llm.timeout_s=15",  # response_format auto: the /models answer picks json_object_schema
               "--set", "llm.max_tokens=80", "--set", "llm.max_retries=2", "--set", "llm.concurrency=2",
               "--set", "input.max_queries=6", "--set", "prompts.negatives_per_prompt=1",
               "--set", "prompts.strategies=[minimal_edit,topic_near]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "f" / "run.json").read_text())
    counts, llm = run["counts"], run["llm"]
    assert sum(proxy.faults.values()) >= 3 and proxy.requests == llm["requests"]
    assert llm["retries"] >= sum(proxy.faults.values())
    assert counts["prompts"] == 12 and counts["kept"] + counts["rejected"] == counts["candidates"]
    failed = run["stages"]["generate"]["rejected_by_reason"].get("generation_failed", 0)
    assert failed == llm["failures"]
    assert counts["candidates"] >= counts["prompts"]  # every prompt gave passages or one failure row
    assert llm["failures"] < counts["prompts"]
    # Every prompt is done or recorded failed: each (query, strategy) has rows in triplets/ or rejects/.
    from datasets import load_from_disk

    folder = tmp_path / "f"
    seen = {(r["query_id"], r["strategy"]) for name in ("triplets", "rejects")
            for r in load_from_disk(str(folder / name))}
    assert len(seen) == counts["prompts"]
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["not_applicable"]


def test_all_requests_failing_stops_early(llama_server, tmp_path):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=1, kinds=("500",)) as proxy:  # every request answered with HTTP 500
        cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}",
               "--set", f"llm.base_url={proxy.base_url}", "--set", f"llm.model={llama_server.model_name}",
               "--set", "llm.max_retries=1", "--set", "llm.fail_fast_after=4"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("synthgen: error: the first 4 requests to") and "InternalServerError" in last
    # It stopped early: far fewer requests than 20 queries x 3 strategies x 2 attempts.
    assert proxy.requests < 20


def test_unreachable_server_is_one_line(tmp_path):
    cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}",
           "--set", "llm.base_url=http://127.0.0.1:9/v1", "--set", "llm.model=m"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("synthgen: error: cannot reach the LLM server")
