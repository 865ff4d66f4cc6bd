"""ray.llm_stage: processor: generate's LLM calls through ray.data.llm's processor (HTTP against the real embedded
llama.cpp server here; vLLM engines on GPUs), answers cached under the local runner's keys, so a local run reads
them and makes the same rows, and a rerun sends nothing."""

from __future__ import annotations

import json

import pytest

from synthgen.core.cache import RunCache, content_key
from synthgen.core.config_load import load_config

ray = pytest.importorskip("ray", reason="runner: ray needs `pip install 'synthgen[ray]'` (make install does it)")

from test_ray_runner import assert_same_run, ray_cluster, same_rows  # noqa: E402,F401 - the fixture is shared

# llm.max_retries=0: the processor does not retry unparseable answers, so the local run must not ask them again
# (a local run with retries > 0 re-asks failures cached with fewer retries: that is the documented difference).
COMMON = ("input.max_queries=3", "batch_queries=1", "llm.max_tokens=96", "llm.max_retries=0",
          "prompts.strategies=[minimal_edit,topic_near]")


def _cached(path, keys):
    """The cache's answers for `keys` (or how many it holds)."""
    cache = RunCache(path)
    try:
        return cache.count("llm") if keys is None else cache.get_llm(keys)
    finally:
        cache.close()


def _generate(tmp_path, name: str, *overrides: str) -> tuple:
    from synthgen.commands.generate import generate

    cfg = load_config(None, [f"output_dir={tmp_path / name}", f"cache_file={tmp_path / 'shared.sqlite'}",
                             *COMMON, *overrides])
    folder = generate(cfg)
    return folder, json.loads((folder / "run.json").read_text())


def test_processor_answers_are_what_a_local_run_reads_and_a_rerun_sends_nothing(tmp_path, ray_cluster):
    processor = ("runner=ray", "ray.llm_stage=processor", "ray.llm_batch_size=4")
    on_ray, b = _generate(tmp_path, "processor", *processor)
    assert b["runner"]["name"] == "ray" and b["runner"]["llm_stage"] == "processor"
    # 3 queries x 2 strategies: six prompts, each sent once through the HTTP processor, none from the cache.
    assert (b["requests_sent"], b["cache_hits"]) == (6, 0)
    assert b["llm"]["requests"] == 6 and b["llm"]["prompt_tokens"] > 0 and b["llm"]["completion_tokens"] > 0
    assert _cached(tmp_path / "shared.sqlite", None) == 6

    local, a = _generate(tmp_path, "local", "runner=local")
    # The local runner found every answer under its own keys: the processor sent the local request, keyed alike.
    assert (a["requests_sent"], a["cache_hits"]) == (0, 6)
    assert_same_run(local, on_ray, a, b)

    # A rerun in a fresh folder: no complete shard to reuse, every prompt answered by the cache, nothing sent.
    again, c = _generate(tmp_path, "again", *processor)
    assert (c["requests_sent"], c["cache_hits"]) == (0, 6) and c["llm"]["requests"] == 0
    assert c["runner"]["batches_reused"] == 0
    same_rows(again, on_ray, "triplets")
    same_rows(again, on_ray, "rejects")


@pytest.mark.long  # ~2.5 min; make test-slow runs it (the step path's kill -9 test stays in make test)
def test_kill9_during_the_processor_then_rerun_repeats_no_cached_request(tmp_path):
    """The processor writes each batch of answers (ray.llm_batch_size=2) to the cache as it comes out: after a
    kill -9 of the whole run, the rerun sends only the prompts the cache does not hold."""
    import subprocess
    import sys
    import time

    from processes import kill_session

    cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}", "--set", "run_name=r",
           "--set", "runner=ray", "--set", "ray.num_cpus=2", "--set", "ray.llm_stage=processor",
           "--set", "ray.llm_batch_size=2", *[a for o in COMMON for a in ("--set", o)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "cache.sqlite"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None and (not db.exists() or _cached(db, None) < 2):
        time.sleep(0.2)
    kill_session(proc.pid)
    proc.wait()
    before = _cached(db, None)
    assert 2 <= before < 6 and not (tmp_path / "r" / "run.json").exists(), "the kill must land mid-processor"

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((tmp_path / "r" / "run.json").read_text())
    assert (report["requests_sent"], report["cache_hits"]) == (6 - before, before)
    assert _cached(db, None) == 6


def test_an_unparseable_answer_is_a_cached_reject_with_the_local_error(tmp_path):
    """Canned server answers (parsing only): what the processor's postprocess caches and reports."""
    from synthgen.llm.generate import GenerateStep
    from synthgen.runners.ray_llm import Answer, RecordedAnswers, read_http

    answer = Answer(str(tmp_path / "c.sqlite"), read_http)
    ok = answer({"key": "k1", "http_response": {"choices": [{"message": {"content": '{"passages": ["a b c"]}'}}],
                                                "usage": {"prompt_tokens": 12, "completion_tokens": 7}}})
    bad = answer({"key": "k2", "http_response": {"choices": [{"message": {"content": '{"passages": ["a b'}}]}})
    down = answer({"key": "k3", "http_response": {"error": {"message": "model is loading"}}})
    assert (ok["error"], ok["prompt_tokens"], ok["completion_tokens"]) == ("", 12, 7)
    assert bad["error"].startswith("ParseError: invalid JSON") and bad["cacheable"]
    assert down["error"].startswith("HTTPError: ") and not down["cacheable"]
    got = _cached(tmp_path / "c.sqlite", ["k1", "k2", "k3"])
    # As GenerateStep caches them: passages, or the error with the retries it was given (none here).
    assert got == {"k1": {"passages": ["a b c"], "error": None},
                   "k2": {"passages": None, "error": bad["error"], "max_retries": 0}}

    # An answer that could not be cached reaches the generate step as the reject the local runner makes of it.
    class Client:
        model, cfg = "m", load_config(None, []).llm

    messages = [{"role": "user", "content": "x"}]
    params = {"model": "m"}
    step = GenerateStep(RecordedAnswers(Client(), params, {content_key(params, messages): down["error"]}))
    out = step({"query_id": ["q"], "query": ["q?"], "positive_id": ["p"], "positive": ["pos"], "strategy": ["s"],
                "template_hash": ["h"], "messages": [json.dumps(messages)]})
    assert out["rule"] == ["generation_failed"] and down["error"] in out["reason"][0]
    assert step.requests_sent == 1 and step.cache_hits == 0


def test_vllm_processor_settings_follow_the_in_process_backend(tmp_path):
    """Without a GPU: the settings the vLLM engine processor is built with (engine, sampling, guided JSON)."""
    from synthgen.core.config import ConfigError
    from synthgen.llm.vllm_backend import VLLMBackend
    from synthgen.runners.ray_vllm import VLLMRow, prepare_vllm, vllm_config

    model = tmp_path / "tiny-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = load_config(None, ["backend=vllm", f"vllm.model={model}", "ray.concurrency=2", "ray.llm_batch_size=4",
                             "llm.seed=7", "llm.max_tokens=96"])
    backend = VLLMBackend(cfg.llm, cfg.vllm, 3)
    with pytest.raises(ConfigError, match="ray.num_gpus"):
        prepare_vllm(cfg, backend)
    cfg = cfg.model_copy(update={"ray": cfg.ray.model_copy(update={"num_gpus": 1.0})})
    prepare_vllm(cfg, backend)
    assert (backend.model_path, backend.model) == (str(model), "tiny-model")  # as VLLMBackend.open names them
    config, sampling = vllm_config(cfg, backend)
    assert (config.model_source, config.concurrency, config.batch_size) == (str(model), 2, 4)
    assert config.should_continue_on_error and "model" not in config.engine_kwargs
    assert config.engine_kwargs["seed"] == 7 and config.engine_kwargs["max_model_len"] == cfg.vllm.max_model_len
    assert (sampling["seed"], sampling["max_tokens"], sampling["n"]) == (7, 96, 1)
    # Guided JSON: the passages schema for three passages, as text (a nested schema does not survive Arrow).
    from synthgen.core.schema import json_schema_for

    assert json.loads(sampling["structured_outputs"]["json"]) == json_schema_for(3)
    row = VLLMRow(sampling)({"key": "k", "messages": json.dumps([{"role": "user", "content": "x"}])})
    assert row["messages"] == [{"role": "user", "content": "x"}] and row["sampling_params"] is sampling


@pytest.mark.gpu
def test_vllm_engine_processor_on_gpu(tmp_path):
    """backend: vllm with the processor: one vLLM engine per replica on a GPU; its answers are what the local
    vLLM backend reads from the cache. Needs a GPU and vLLM: none was lent when this was written."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no GPU: the vLLM engine processor runs vLLM engines on GPUs (ray.num_gpus > 0)")
    pytest.importorskip("vllm", reason="backend: vllm needs `make install-vllm`")
    ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        vllm = ("backend=vllm", "vllm.max_model_len=2048")
        on_ray, b = _generate(tmp_path, "processor", *vllm, "runner=ray", "ray.llm_stage=processor",
                              "ray.num_gpus=1", "ray.llm_batch_size=4")
        assert (b["requests_sent"], b["cache_hits"]) == (6, 0) and b["llm"]["completion_tokens"] > 0
        local, a = _generate(tmp_path, "local", *vllm, "runner=local")
        assert (a["requests_sent"], a["cache_hits"]) == (0, 6)
        assert_same_run(local, on_ray, a, b)
    finally:
        ray.shutdown()


def test_prompt_actor_gives_the_scorer_the_runs_positives_as_the_local_steps_do(tmp_path):
    """`answer_removed` prompts rank a positive's sentences with the scorer; a fusion scorer standardises against
    its corpus, which the local generate steps set to the run's positives. The processor's prompt actor must do the
    same: then its prompts, hence its cache keys, are the local ones (without it a fusion scorer cannot score)."""
    import pyarrow as pa

    from synthgen.llm.plan import run_positives
    from synthgen.llm.prompt import PromptStep, load_templates
    from synthgen.runners.ray_llm import PromptKeys
    from synthgen.validate.load import load_scorer

    cfg = load_config(None, ["scorer.kind=fusion", "scorer.max_length=64", "prompts.strategies=[scorer_guided_edit]"])
    positives = ["Flutter of swept wings was measured in a wind tunnel. The critical speed fell with sweep. "
                 "Panels were clamped at both ends.",
                 "A laminar boundary layer separates near the trailing edge. Suction delays the separation. "
                 "Heat transfer was not measured.",
                 "The normal shock stands ahead of the blunt body. Its stand-off distance grows with Mach number. "
                 "Real-gas effects were small."]
    pairs = {"query_id": ["1", "2", "3"], "positive_id": ["a", "b", "c"], "positive": positives,
             "query": ["how does sweep change flutter speed", "what delays boundary layer separation",
                       "how far does the shock stand off a blunt body"]}
    params = {"model": "m"}
    got = PromptKeys(cfg, params, 2, str(tmp_path / "c.sqlite"), run_positives(pairs))(pa.Table.from_pydict(pairs))

    scorer = load_scorer(cfg.scorer)
    scorer.use_corpus(run_positives(pairs))  # as validation_steps does inside llm.plan.generate_steps
    local = PromptStep(load_templates(cfg.prompts.dir, cfg.prompts.strategies), 2, scorer)(pairs)
    want = [content_key(params, json.loads(m)) for m, r in zip(local["messages"], local["reason"]) if r is None]
    assert len(want) == 3 and got["key"] == want and got["cached"] == [False] * 3
    assert got["messages"] == [m for m, r in zip(local["messages"], local["reason"]) if r is None]
