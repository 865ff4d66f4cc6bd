"""vLLM in process (`backend: vllm`): one `vllm.LLM` per worker; every prompt of a batch is queued at once so vLLM
schedules them together, and each result is handed on (and cached) the engine step it finishes (vllm_stream);
JSON is constrained to the passages schema by vLLM's structured outputs.
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
from synthgen.llm.parse import parse_passages
from synthgen.llm.server import ServerError
from synthgen.llm.vllm_model import CONVERTED_MODEL_NAME, CPU_SEEDED_SAFE, cpu_dtype, import_vllm, resolve_model
from synthgen.llm.vllm_stream import ChatLoop, OnDone, stream

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
        kwargs = self.engine_kwargs(path, eager, dtype, on_cpu)
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

    def engine_kwargs(self, path: str, eager: bool, dtype: str, on_cpu: bool) -> dict[str, Any]:
        """vllm.LLM's arguments (also the engine_kwargs of Ray's vLLM processor, runners/ray_vllm)."""
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
        return kwargs

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

        fields = self.sampling_fields(schema, max_tokens, temperature, samples, attempt)
        structured = fields.pop("structured_outputs", None)
        return SamplingParams(**fields, structured_outputs=StructuredOutputsParams(**structured) if structured else None)

    def sampling_fields(self, schema: dict[str, Any] | None, max_tokens: int, temperature: float,
                        samples: int = 1, attempt: int = 0) -> dict[str, Any]:
        """SamplingParams' fields as plain data (also what Ray's vLLM processor gets per row)."""
        fmt = self.cfg.response_format
        fields: dict[str, Any] = {}
        if fmt == "json_object" or (schema is None and fmt != "none"):
            fields["structured_outputs"] = {"json_object": True}
        elif fmt != "none":  # auto, json_schema, json_object_schema: the schema itself
            fields["structured_outputs"] = {"json": schema}
        # A fixed seed would repeat the same malformed text on every retry; vLLM gives sample k of n the
        # seed + k, so retries step by more than n (max 16).
        seed = None if self.cfg.seed is None else self.cfg.seed + 1009 * attempt
        return {"n": samples, "temperature": temperature, "top_p": self.cfg.top_p, "max_tokens": max_tokens,
                "seed": seed, **fields}

    def _stream(self, prompts: list[list[dict[str, str]]], parse: Callable[[str | None], Any],
                schema: dict[str, Any] | None, max_tokens: int, temperature: float, samples: int,
                on_done: OnDone) -> None:
        """All prompts go to vLLM at once; `on_done(i, parsed values, error)` for each as soon as it is final.
        A prompt none of whose samples parse is retried (new seed) up to llm.max_retries times."""
        self.open()
        loop = ChatLoop(self._llm, prompts,
                        lambda attempt: self.sampling_params(schema, max_tokens, temperature, samples, attempt))
        stream(loop, len(prompts), parse, self.cfg.max_retries, self.usage, on_done)

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        """One Completion per prompt with up to n passages: one list, or the first passage of n samples.

        `on_result` is called for each prompt the engine step it finishes, so a crash mid-batch loses only
        the requests still decoding."""
        k = self.passages_per_prompt
        done: list[Completion] = [Completion(None, "no output")] * len(prompts)

        def finished(i: int, vals: list[Any], err: str | None) -> None:
            if vals:
                done[i] = Completion([p for got in vals for p in got[:k]][: self.n], None)
            else:  # unparseable after the retries is a fact about the prompt; an engine refusal may pass later
                done[i] = Completion(None, err, cacheable=bool(err and err.startswith("ParseError")))
            if on_result is not None:
                on_result(i, done[i])

        self._stream(prompts, parse_passages, json_schema_for(k), self.cfg.max_tokens, self.cfg.temperature,
                     self.n if self.multi == "n" else 1, finished)
        return done

    def cache_params(self) -> dict[str, Any]:
        """Everything besides the prompt that decides the output (part of GenerateStep's cache key)."""
        c = self.cfg
        return {"model": self.model, "engine": "vllm", "model_path": self.model_path, "multi": self.multi,
                "n": self.n, "temperature": c.temperature, "top_p": c.top_p, "max_tokens": c.max_tokens,
                "seed": c.seed, "response_format": c.response_format,
                "dtype": self.vcfg.dtype}

    def ask(self, prompts: list[list[dict[str, str]]], parse: Callable[[str | None], Any],
            schema: dict[str, Any] | None, max_tokens: int, temperature: float = 0.0,
            on_result: Callable[[int, Any, str | None], None] | None = None) -> list[tuple[Any, str | None]]:
        """Any structured question (e.g. the validation judge): one (parsed value, error) per prompt;
        `on_result(i, value, error)` the engine step each answer finishes."""
        answers: list[tuple[Any, str | None]] = [(None, "no output")] * len(prompts)

        def finished(i: int, vals: list[Any], err: str | None) -> None:
            answers[i] = (vals[0], None) if vals else (None, err)
            if on_result is not None:
                on_result(i, *answers[i])

        self._stream(prompts, parse, schema, max_tokens, temperature, 1, finished)
        return answers
