"""vLLM in process (`backend: vllm`): one `vllm.LLM` per worker; every prompt of a batch goes to `LLM.chat` at once
so vLLM schedules them together; JSON is constrained to the passages schema by vLLM's structured outputs.
Several negatives per prompt come either as a list in one JSON object (`vllm.multi: list`, default) or as `n`
samples of a one-passage object (`vllm.multi: n`). The model comes from vllm_model; vLLM's own server is in
vllm_server. `vllm` is imported only inside `VLLMBackend.open`, so synthgen works without it.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any, Callable

from synthgen.core.config import LLMConfig, VLLMConfig
from synthgen.core.schema import json_schema_for
from synthgen.llm.backend import Backend, Completion, LLMUsage, OnResult
from synthgen.llm.parse import ParseError, parse_passages
from synthgen.llm.server import ServerError
from synthgen.llm.vllm_model import CONVERTED_MODEL_NAME, CPU_SEEDED_SAFE, cpu_dtype, import_vllm, resolve_model

log = logging.getLogger(__name__)


class VLLMBackend(Backend):
    """`vllm.LLM` in this process (its engine core runs in a child process); opened once per worker."""

    def __init__(self, llm_cfg: LLMConfig, vcfg: VLLMConfig, n: int):
        self.cfg, self.vcfg, self.n = llm_cfg, vcfg, n
        self.multi = vcfg.multi
        self.usage = LLMUsage()
        self.model_path: str | None = vcfg.model
        self.model = vcfg.served_model_name or vcfg.model or CONVERTED_MODEL_NAME  # final name set by open()
        self.engine_info: dict[str, Any] = {}
        self._llm: Any = None
        self._max_num_seqs: int | None = None
        self._vllm: Any = None
        self._on_cpu = False

    @property
    def passages_per_prompt(self) -> int:
        """What each prompt asks the model for: all n in one list, or one per sample with `n` samples."""
        return 1 if self.multi == "n" else self.n

    def open(self) -> None:
        if self._llm is not None:
            return
        vllm = self._vllm = import_vllm()
        from vllm.platforms import current_platform

        on_cpu = self._on_cpu = current_platform.is_cpu()
        path, self.model = resolve_model(self.vcfg)
        self.model_path = path
        eager = self.vcfg.enforce_eager if self.vcfg.enforce_eager is not None else on_cpu
        dtype = self.vcfg.dtype
        if dtype == "auto" and on_cpu:
            dtype = cpu_dtype()
        kwargs: dict[str, Any] = dict(
            model=path, tokenizer=path, served_model_name=self.model,
            max_model_len=self.vcfg.max_model_len, enforce_eager=eager, dtype=dtype,
            enable_prefix_caching=self.vcfg.enable_prefix_caching,
            gpu_memory_utilization=self.vcfg.gpu_memory_utilization,
            tensor_parallel_size=self.vcfg.tensor_parallel_size,
            seed=self.cfg.seed if self.cfg.seed is not None else 0,
        )
        if self.vcfg.max_num_seqs:
            kwargs["max_num_seqs"] = self.vcfg.max_num_seqs
        if on_cpu:
            kwargs.update(CPU_SEEDED_SAFE)
            kwargs["max_num_batched_tokens"] = max(self.vcfg.max_model_len, 4096)
            if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                kwargs["kv_cache_memory_bytes"] = int(self.vcfg.kv_cache_gb * (1 << 30))
        kwargs.update(self.vcfg.engine_args)
        log.info("vLLM %s: loading %s on %s (dtype=%s, enforce_eager=%s, max_model_len=%d, prefix caching %s)%s...",
                 vllm.__version__, path, "CPU" if on_cpu else current_platform.device_name, dtype, eager,
                 self.vcfg.max_model_len, "on" if self.vcfg.enable_prefix_caching else "off",
                 "; first start on CPU takes a minute or two" if on_cpu else "")
        t0 = time.perf_counter()
        try:
            self._llm = vllm.LLM(**kwargs)
        except Exception as exc:  # noqa: BLE001 - engine start failures become one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            raise ServerError(f"vLLM could not load {path}: {type(exc).__name__}: {first}") from None
        load_s = time.perf_counter() - t0
        # read back from the engine (kept after close, for run.json): vLLM picks a default when unset
        sched = getattr(getattr(getattr(self._llm, "llm_engine", None), "vllm_config", None), "scheduler_config", None)
        self._max_num_seqs = getattr(sched, "max_num_seqs", None)
        self.engine_info = {"vllm": vllm.__version__, "model_path": path, "device": "cpu" if on_cpu else "gpu",
                            "dtype": dtype, "enforce_eager": eager, "load_seconds": round(load_s, 1), "multi": self.multi}
        log.info("vLLM engine ready in %.0f s", load_s)

    @property
    def concurrency(self) -> int | None:
        """The engine's max_num_seqs: every prompt of a batch is submitted at once and vLLM decodes this many."""
        return self._max_num_seqs or self.vcfg.max_num_seqs

    def close(self) -> None:
        if self._llm is None:
            return
        core = getattr(getattr(self._llm, "llm_engine", None), "engine_core", None)
        try:
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        except Exception as exc:  # noqa: BLE001 - best effort at exit
            log.debug("vLLM shutdown: %s", exc)
        self._llm = None
        gc.collect()

    # -- sampling

    def sampling_params(self, schema: dict[str, Any] | None, max_tokens: int, temperature: float,
                        samples: int = 1, attempt: int = 0) -> Any:
        """SamplingParams from llm.* (top_p, seed) and the request; JSON constrained to `schema`."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        fmt = self.cfg.response_format
        structured = None
        if fmt == "json_object" or (schema is None and fmt != "none"):
            structured = StructuredOutputsParams(json_object=True)
        elif fmt != "none":  # auto, json_schema, json_object_schema: the schema itself
            structured = StructuredOutputsParams(json=schema)
        # A fixed seed would repeat the same malformed text on every retry; vLLM gives sample k of n the
        # seed + k, so retries step by more than n (max 16).
        seed = None if self.cfg.seed is None else self.cfg.seed + 1009 * attempt
        return SamplingParams(n=samples, temperature=temperature, top_p=self.cfg.top_p, max_tokens=max_tokens,
                              seed=seed, structured_outputs=structured)

    def _chat(self, prompts: list[list[dict[str, str]]], params: Any) -> list[Any]:
        """All prompts in one call; if vLLM rejects the call (e.g. one prompt too long), one by one."""
        try:
            return self._llm.chat(prompts, params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001
            _raise_if_dead(exc)
            if len(prompts) == 1:
                return [exc]
            log.warning("vLLM rejected a batch of %d prompts (%s); retrying them one by one", len(prompts), exc)
            out: list[Any] = []
            for p in prompts:
                try:
                    out.extend(self._llm.chat([p], params, use_tqdm=False))
                except Exception as one:  # noqa: BLE001
                    _raise_if_dead(one)
                    out.append(one)
            return out

    def _count(self, kind: str, count: int = 1) -> None:
        self.usage.errors[kind] = self.usage.errors.get(kind, 0) + count

    def _run(self, prompts: list[list[dict[str, str]]], parse: Callable[[str | None], Any],
             schema: dict[str, Any] | None, max_tokens: int, temperature: float,
             samples: int = 1) -> list[tuple[list[Any], str | None]]:
        """Per prompt: (parsed values of the samples that parsed, last error). All prompts go to vLLM at
        once; a prompt none of whose samples parse is retried (new seed) up to llm.max_retries times."""
        self.open()
        values: list[list[Any]] = [[] for _ in prompts]
        errors: list[str | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        for attempt in range(self.cfg.max_retries + 1):
            if not pending:
                break
            if attempt:
                self.usage.retries += len(pending)
            params = self.sampling_params(schema, max_tokens, temperature, samples, attempt)
            still: list[int] = []
            for i, res in zip(pending, self._chat([prompts[i] for i in pending], params)):
                self.usage.requests += 1
                if isinstance(res, BaseException):
                    errors[i] = f"{type(res).__name__}: {str(res)[:300]}"
                    continue  # vLLM refused the prompt itself: a retry would be refused too
                self.usage.prompt_tokens += len(res.prompt_token_ids or [])
                for out in res.outputs:
                    self.usage.completion_tokens += len(out.token_ids)
                    try:
                        values[i].append(parse(out.text))
                    except ParseError as exc:
                        cut = " (stopped at max_tokens)" if out.finish_reason == "length" else ""
                        errors[i] = f"ParseError: {exc}{cut}"
                if values[i]:
                    if len(values[i]) < len(res.outputs):  # the prompt succeeded, some of its n samples did not
                        self._count("ParseError (some of n samples)", len(res.outputs) - len(values[i]))
                    errors[i] = None
                else:
                    still.append(i)
            pending = still
        for i in range(len(prompts)):
            if not values[i]:
                errors[i] = errors[i] or "no output"
                self.usage.failures += 1
                self._count(errors[i].split(":", 1)[0])
        return list(zip(values, errors))

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        """One Completion per prompt with up to n passages: one list, or the first passage of n samples.

        All prompts run as one vLLM batch, so `on_result` is called for each once the batch is done."""
        samples = self.n if self.multi == "n" else 1
        k = self.passages_per_prompt
        done = []
        for i, (vals, err) in enumerate(self._run(prompts, parse_passages, json_schema_for(k), self.cfg.max_tokens,
                                                  self.cfg.temperature, samples)):
            if vals:
                comp = Completion([p for got in vals for p in got[:k]][: self.n], None)
            else:  # unparseable after the retries is a fact about the prompt; an engine refusal may pass later
                comp = Completion(None, err, cacheable=bool(err and err.startswith("ParseError")))
            if on_result is not None:
                on_result(i, comp)
            done.append(comp)
        return done

    def cache_params(self) -> dict[str, Any]:
        """Everything besides the prompt that decides the output (part of GenerateStep's cache key)."""
        c = self.cfg
        return {"model": self.model, "engine": "vllm", "model_path": self.model_path, "multi": self.multi,
                "n": self.n, "temperature": c.temperature, "top_p": c.top_p, "max_tokens": c.max_tokens,
                "seed": c.seed, "response_format": c.response_format,
                "dtype": self.vcfg.dtype}

    def ask(self, prompts: list[list[dict[str, str]]], parse: Callable[[str | None], Any],
            schema: dict[str, Any] | None, max_tokens: int, temperature: float = 0.0) -> list[tuple[Any, str | None]]:
        """Any structured question (e.g. the validation judge): one (parsed value, error) per prompt."""
        return [(vals[0], None) if vals else (None, err)
                for vals, err in self._run(prompts, parse, schema, max_tokens, temperature)]


def _raise_if_dead(exc: BaseException) -> None:
    """A dead engine fails every later prompt too: stop the run with one line instead of writing rejects."""
    if type(exc).__name__ == "EngineDeadError":
        raise ServerError("the vLLM engine died (its traceback is in the log above); "
                          "on CPU try a smaller batch_queries or vllm.max_num_seqs") from None
