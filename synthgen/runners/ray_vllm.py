"""`ray.llm_stage: processor` with `backend: vllm`: the LLM stage as ray.data.llm's vLLM engine processor.

One vLLM engine per replica (`ray.concurrency` replicas, each on its own GPU bundle; `vllm.tensor_parallel_size`
GPUs per replica), `ray.llm_batch_size` rows per batch. The engine gets vllm.LLM's arguments and the sampling
fields of the in-process backend (llm/vllm_backend: the same seed, caps and structured output, i.e. guided JSON
constrained to the passages schema), and the cache keys are VLLMBackend's, so both paths share answers. The
answers are parsed and cached by runners/ray_llm's `Answer`, as the HTTP path's are.
Needs GPUs: untested here (no GPU was lent); see tests/test_ray_processor.py's `gpu` test.
"""

from __future__ import annotations

import json
from typing import Any

from synthgen.core.config import Config, ConfigError
from synthgen.core.schema import json_schema_for


def prepare_vllm(cfg: Config, backend) -> None:
    """Settings the processor cannot run with stop here; the backend gets the model name and path that
    VLLMBackend.open would give it (its cache keys carry both)."""
    from synthgen.llm.vllm_model import resolve_model

    if cfg.ray.num_gpus <= 0:
        raise ConfigError("ray.llm_stage=processor with backend=vllm runs vLLM engines on GPUs: set ray.num_gpus "
                          "(> 0), or use backend=openai for the HTTP processor")
    if cfg.vllm.multi == "n":
        raise ConfigError("ray.llm_stage=processor takes one sample per prompt: set vllm.multi=list")
    backend.model_path, backend.model = resolve_model(cfg.vllm)


class VLLMRow:
    """The processor's preprocess: a prompt row -> the chat messages and the sampling fields of the engine."""

    def __init__(self, sampling: dict[str, Any]):
        self.sampling = sampling

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"messages": json.loads(row["messages"]), "sampling_params": self.sampling}


def read_vllm(row: dict[str, Any]) -> tuple[str | None, int, int, str | None]:
    """(text, prompt tokens, completion tokens, error) of a vLLM stage answer."""
    return row.get("generated_text"), int(row.get("num_input_tokens") or 0), \
        int(row.get("num_generated_tokens") or 0), None


def vllm_processor(cfg: Config, backend, postprocess):
    """`postprocess`: runners/ray_llm's Answer over `read_vllm` (parse and cache, as on the HTTP path)."""
    from ray.data.llm import build_processor

    config, sampling = vllm_config(cfg, backend)
    return build_processor(config, preprocess=VLLMRow(sampling), postprocess=postprocess)


def vllm_config(cfg: Config, backend):
    """(vLLMEngineProcessorConfig, the sampling fields every row carries)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    vcfg = cfg.vllm
    eager = bool(vcfg.enforce_eager)
    engine = backend.engine_kwargs(backend.model_path, eager, vcfg.dtype, on_cpu=False)
    engine.pop("model")  # the processor's model_source
    sampling = backend.sampling_fields(json_schema_for(backend.passages_per_prompt), cfg.llm.max_tokens,
                                       cfg.llm.temperature)
    structured = sampling.get("structured_outputs") or {}
    if isinstance(structured.get("json"), dict):  # as text: a JSON schema does not survive Arrow's typing
        structured["json"] = json.dumps(structured["json"])
    config = vLLMEngineProcessorConfig(
        model_source=backend.model_path, engine_kwargs=engine, concurrency=cfg.ray.concurrency,
        batch_size=cfg.ray.llm_batch_size, should_continue_on_error=True, log_engine_metrics=False)
    return config, sampling
