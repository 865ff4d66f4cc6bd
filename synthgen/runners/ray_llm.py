"""`ray.llm_stage: processor`: generate's LLM calls as a ray.data.llm processor stage of their own.

1. prompts: the local PromptStep over the pairs (`map_batches`, actor pool); each LLM prompt gets the cache key the
   local GenerateStep gives it (same backend `cache_params`, same messages) and is looked up in the shared cache;
2. the prompts the cache does not answer, once per key, go through `build_processor`: HttpRequestProcessorConfig
   against the run's OpenAI-compatible server with the body OpenAIBackend sends (`OpenAIBackend.body`), or
   vLLMEngineProcessorConfig when GPUs are given (runners/ray_vllm);
3. each answer is parsed by parse_passages and written to the shared cache (`Answer`, the processor's
   postprocess) as its batch comes out, under the local key: a rerun after kill -9 sends only what is not cached;
4. the batches then run through the usual steps (runners/ray_runner); GenerateStep reads every answer from the
   cache and builds the candidate rows as locally; answers that could not be cached (HTTP faults) come with
   their error through `RecordedAnswers`, so they are rejects (`generation_failed`) as locally.

The processor does not retry parse failures (OpenAIBackend retries with the next seed): an unparseable answer
is a reject at once, cached as a failure with 0 retries (a local run with llm.max_retries > 0 asks again).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from synthgen.core.cache import RunCache, content_key
from synthgen.core.config import Config
from synthgen.llm.backend import Backend, Completion, LLMUsage, OnResult, error_text
from synthgen.llm.generate import GenerateStep, cache_value, usable
from synthgen.llm.parse import ParseError, parse_passages

log = logging.getLogger(__name__)

PROCESSOR_RETRIES = 0  # parse failures are not retried on this path (the retry budget cached with a failure)


class PromptKeys:
    """Ray actor: pairs in, one row per prompt for the LLM out: its cache key, its messages (JSON), and whether
    the shared cache answers it already. Template-rendered and not-applicable prompts need no LLM: left out."""

    def __init__(self, cfg: Config, params: dict[str, Any], per_prompt: int, cache_path: str,
                 reference: list[str]):
        from synthgen.llm.prompt import PromptStep, load_templates, needs_scorer
        from synthgen.validate.load import load_scorer

        templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
        self.params, self.cache = params, RunCache(cache_path)
        scorer = None
        if needs_scorer(templates):
            # The passages the local generate steps give the scorer (the run's positives): a fusion scorer ranks
            # a positive's sentences against them, and the ranking decides the prompt, hence its cache key.
            scorer = load_scorer(cfg.scorer)
            scorer.use_corpus(reference)
            scorer.attach(self.cache)
        self.step = PromptStep(templates, per_prompt, scorer)

    def __call__(self, table):
        out = self.step(table.to_pydict())
        idx = [i for i, (r, e) in enumerate(zip(out["reason"], out["engine"])) if r is None and e != "template"]
        keys = [content_key(self.params, json.loads(out["messages"][i])) for i in idx]
        known = self.cache.get_llm(keys)
        return {"key": keys, "messages": [out["messages"][i] for i in idx],
                "cached": [k in known and usable(known[k], PROCESSOR_RETRIES) for k in keys]}


class HttpBody:
    """The processor's preprocess: a prompt row -> the chat-completions body OpenAIBackend sends for it."""

    def __init__(self, template: dict[str, Any]):
        self.template = template

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"payload": {**self.template, "messages": json.loads(row["messages"])}}


def read_http(row: dict[str, Any]) -> tuple[str | None, int, int, str | None]:
    """(text, prompt tokens, completion tokens, error) of an HTTP stage answer; an answer without choices (the
    server's error body for a status the stage does not retry) is an error, not cached: a later run asks again."""
    resp = row.get("http_response") or {}
    choices = resp.get("choices")
    if choices is None or len(choices) == 0:
        return None, 0, 0, f"HTTPError: {json.dumps(resp, default=str)[:300]}"
    usage = resp.get("usage") or {}
    return (choices[0].get("message") or {}).get("content"), int(usage.get("prompt_tokens") or 0), \
        int(usage.get("completion_tokens") or 0), None


class Answer:
    """The processor's postprocess: the answer parsed by parse_passages and written to the shared cache under the
    prompt's key (a parse failure too, as GenerateStep records it); returns what the run report counts."""

    def __init__(self, cache_path: str, read: Callable[[dict[str, Any]], tuple]):
        self.cache_path, self.read = cache_path, read
        self._cache: RunCache | None = None  # opened in the worker: a sqlite connection does not pickle

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text, prompt_tokens, completion_tokens, error = self.read(row)
        if error is not None:
            comp = Completion(None, error, cacheable=False)
        else:
            try:
                comp = Completion(parse_passages(text), None)
            except ParseError as exc:
                comp = Completion(None, error_text(exc))
        if comp.cacheable:
            if self._cache is None:
                self._cache = RunCache(self.cache_path)
            self._cache.put_llm(row["key"], cache_value(comp, PROCESSOR_RETRIES))
        return {"key": row["key"], "error": comp.error or "", "cacheable": comp.cacheable,
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}


def engine_error(row: dict[str, Any]) -> dict[str, Any]:
    """Rows the engine failed on bypass the postprocess (should_continue_on_error): the same columns for them."""
    error = row.get("__inference_error__") or ""
    if not error:
        return {k: row[k] for k in ("key", "error", "cacheable", "prompt_tokens", "completion_tokens")}
    return {"key": row["key"], "error": f"EngineError: {str(error)[:300]}", "cacheable": False,
            "prompt_tokens": 0, "completion_tokens": 0}


def http_processor(cfg: Config, backend: Backend, cache_path: str):
    from ray.data.llm import HttpRequestProcessorConfig, build_processor

    token = os.environ.get(cfg.llm.api_key_env)
    config = HttpRequestProcessorConfig(
        url=f"{backend.base_url.rstrip('/')}/chat/completions",
        headers={"Authorization": f"Bearer {token}"} if token else None,
        batch_size=cfg.ray.llm_batch_size, concurrency=cfg.ray.concurrency,
        max_retries=cfg.llm.max_retries)  # 429/408/5xx and dropped connections, not parse failures
    template = backend.body([], backend.passages_request())
    return build_processor(config, preprocess=HttpBody(template), postprocess=Answer(cache_path, read_http))


@dataclass
class ProcessorRun:
    cache_hits: int = 0  # prompt rows the cache answered (as GenerateStep counts them)
    sent: int = 0  # distinct prompts sent through the processor
    failures: dict[str, str] = field(default_factory=dict)  # key -> error of answers not cached
    usage: LLMUsage = field(default_factory=LLMUsage)


def _first(group):
    return group.slice(0, 1)


def answer_prompts(cfg: Config, table, backend: Backend, cache_path: str, reference: list[str]) -> ProcessorRun:
    """Every LLM prompt of `table`'s pairs answered into the shared cache, through the processor. `reference`:
    the run's distinct positives, the scorer's corpus in the local generate steps."""
    import ray

    compute = ray.data.ActorPoolStrategy(size=cfg.ray.concurrency)
    prompts = ray.data.from_arrow(table).map_batches(
        PromptKeys, fn_constructor_args=(cfg, backend.cache_params(), backend.passages_per_prompt, cache_path,
                                         reference),
        batch_format="pyarrow", compute=compute).materialize()
    todo = prompts.filter(lambda r: not r["cached"])
    run = ProcessorRun(cache_hits=prompts.count() - todo.count())
    if todo.count() == 0:
        return run
    unique = todo.groupby("key").map_groups(_first, batch_format="pyarrow")
    if cfg.ray.num_gpus > 0:
        from synthgen.runners.ray_vllm import read_vllm, vllm_processor

        processor = vllm_processor(cfg, backend, Answer(cache_path, read_vllm))
    else:
        processor = http_processor(cfg, backend, cache_path)
    answers = processor(unique.drop_columns(["cached"])).map(engine_error).materialize()
    run.sent = answers.count()
    for row in answers.filter(lambda r: r["error"] != "").take_all():
        kind = row["error"].split(":", 1)[0]
        run.usage.errors[kind] = run.usage.errors.get(kind, 0) + 1
        if not row["cacheable"]:
            run.failures[row["key"]] = row["error"]
    run.usage.failures = sum(run.usage.errors.values())
    run.usage.requests = run.sent  # the stage's own HTTP retries are not reported by Ray
    run.usage.prompt_tokens = int(answers.sum("prompt_tokens") or 0)
    run.usage.completion_tokens = int(answers.sum("completion_tokens") or 0)
    log.info("LLM processor: %d prompts sent, %d answered from the cache, %d failed", run.sent, run.cache_hits,
             run.usage.failures)
    return run


def llm_stage_on_ray(cfg: Config, backend: Backend, pairs, cache_path: str, folder) -> tuple[tuple, ProcessorRun]:
    """Answers the LLM prompts of the batches not complete yet through the processor; returns the worker
    (factory, args) that runs those batches on from the cache, and the processor's accounting."""
    import pyarrow as pa

    from synthgen.runners.ray_runner import init_ray, pending, shard_folder

    init_ray(cfg.ray)
    if cfg.backend == "vllm":
        from synthgen.runners.ray_vllm import prepare_vllm

        prepare_vllm(cfg, backend)  # the model name and path the cache keys carry, as after VLLMBackend.open
    _, todo, _ = pending(pairs, cfg.batch_queries, shard_folder(folder, cfg.batch_queries))
    table = pa.Table.from_pydict({c: [v[i] for i in todo] for c, v in pairs.items()})
    from synthgen.llm.plan import run_positives

    run = answer_prompts(cfg, table, backend, cache_path, run_positives(pairs)) if todo else ProcessorRun()
    return (processor_worker_steps, (cfg, pairs, cache_path, backend.cache_params(), run.failures)), run


def account(run: ProcessorRun, generate: GenerateStep, backend: Backend) -> None:
    """The processor's requests, cache hits and token usage as the report reads them from the generate step
    (the workers' generate steps only read the cache: their counts are replaced)."""
    generate.requests_sent, generate.cache_hits = run.sent, run.cache_hits
    backend.usage = run.usage


class RecordedAnswers(Backend):
    """GenerateStep's backend in the workers after the processor ran: every cacheable answer is in the shared cache
    (GenerateStep finds it there); what is left are the answers that could not be cached, given back with the
    error the processor recorded. It sends nothing."""

    def __init__(self, backend: Backend, params: dict[str, Any], failures: dict[str, str]):
        self.model, self.usage, self.failures, self.params = backend.model, LLMUsage(), failures, params
        self.cfg = backend.cfg.model_copy(update={"max_retries": PROCESSOR_RETRIES})  # GenerateStep reads it

    def cache_params(self) -> dict[str, Any]:
        return self.params

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        out = [Completion(None, self.failures.get(content_key(self.params, p),
                                                  "RuntimeError: the LLM processor gave no answer"), cacheable=False)
               for p in prompts]
        for i, comp in enumerate(out):
            if on_result is not None:
                on_result(i, comp)
        return out


def processor_worker_steps(stack, cfg: Config, pairs, cache_path: str, params: dict[str, Any],
                           failures: dict[str, str]):
    """A Ray worker's steps (llm.plan.worker_steps) with the generate step reading the processor's answers
    (`params`: the driver's cache_params, the keys the answers were cached under)."""
    from synthgen.llm.plan import worker_steps

    steps = worker_steps(stack, cfg, pairs, cache_path)
    generate = steps[1]
    steps[1] = GenerateStep(RecordedAnswers(generate.backend, params, failures), generate.cache)
    return steps
