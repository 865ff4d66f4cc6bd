"""Backend selection (`backend: openai | vllm`) and the run.json accounting block, for `synthgen generate`.

A backend that cannot work (vLLM not installed, server unreachable) raises `ServerError`, which the CLI
prints as one line with the fix, before the scorer or any model is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import httpx

from synthgen.core.config import Config
from synthgen.llm.accounting import Price, summarize
from synthgen.llm.backend import Backend
from synthgen.llm.openai_backend import OpenAIBackend
from synthgen.llm.server import LocalLlamaServer, ServerError

log = logging.getLogger(__name__)

EMBEDDED_ENDPOINT = "embedded llama.cpp server (127.0.0.1)"


def probe_server(base_url: str, api_key: str | None, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """GET {base_url}/models: the served models, or [] if the server does not list them (or is busy).

    Raises ServerError only when nothing accepts the connection (refused, DNS, connect timeout): any
    answer, even a slow one, means a server is there (a single-slot server may answer /models late).
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        raise ServerError(f"cannot reach the LLM server at llm.base_url={base_url} ({type(exc).__name__}: "
                          f"{str(exc)[:120] or 'no answer'}): start it, or fix llm.base_url, or leave it empty "
                          "for the embedded model") from None
    except httpx.HTTPError:
        return []
    try:
        data = resp.json().get("data", []) if resp.status_code == 200 else []
    except (ValueError, AttributeError):
        return []
    return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []


def auto_response_format(models: list[dict[str, Any]]) -> str:
    """What `llm.response_format: auto` sends to an external server, from its /models answer.

    llama-cpp-python's server (it lists models as owned_by "me") rejects OpenAI's `json_schema` type with a
    500 but takes a schema inside `json_object`; vLLM, llama.cpp's llama-server and hosted APIs take `json_schema`.
    """
    if models and all(m.get("owned_by") == "me" for m in models):
        return "json_object_schema"
    return "json_schema"


def token_param(cfg: Config, models: list[dict[str, Any]]) -> str | None:
    """The token cap's parameter; None = max_completion_tokens with a fallback decided by the server's answers.

    llama-cpp-python's server (owned_by "me") silently ignores max_completion_tokens and would generate to the
    end of its context, so it gets max_tokens from the start.
    """
    if cfg.llm.token_param != "auto":
        return cfg.llm.token_param
    if models and all(m.get("owned_by") == "me" for m in models):
        return "max_tokens"
    return None


def build_backend(cfg: Config, stack: contextlib.ExitStack, prompts_per_batch: int) -> Backend:
    """The configured backend, closed by `stack`; an embedded llama.cpp server is started and stopped by it.

    Sets `backend.endpoint` (what run.json records) and `backend.passages_per_prompt` (what prompts ask for).
    """
    n = cfg.prompts.negatives_per_prompt
    if cfg.backend == "vllm":
        from synthgen.llm.vllm_backend import VLLMBackend
        from synthgen.llm.vllm_model import check_vllm_installed

        check_vllm_installed()
        if cfg.llm.base_url:
            log.warning("backend=vllm runs vLLM in this process; llm.base_url (%s) is not used", cfg.llm.base_url)
        backend: Backend = VLLMBackend(cfg.llm, cfg.vllm, n)
        backend.endpoint = "vllm in process"
    elif cfg.llm.base_url:
        llm_cfg = cfg.llm
        models = probe_server(cfg.llm.base_url, os.environ.get(cfg.llm.api_key_env))
        ids = [m.get("id") for m in models]
        if models and all(m.get("owned_by") == "vllm" for m in models):
            if cfg.llm.model not in ids:
                raise ServerError(f"the vLLM server at {cfg.llm.base_url} serves {', '.join(map(str, ids))}, "
                                  f"not llm.model={cfg.llm.model!r}: set llm.model to one of those")
            # vLLM batches whatever is in flight: send a whole pipeline batch at once unless told otherwise.
            if "concurrency" not in cfg.llm.model_fields_set and prompts_per_batch > cfg.llm.concurrency:
                llm_cfg = cfg.llm.model_copy(update={"concurrency": prompts_per_batch})
                log.info("vLLM server detected: llm.concurrency %d -> %d (one pipeline batch in flight)",
                         cfg.llm.concurrency, prompts_per_batch)
        fmt = cfg.llm.response_format
        if fmt == "auto":
            fmt = auto_response_format(models)
            log.info("llm.response_format auto -> %s for %s", fmt, cfg.llm.base_url)
        backend = OpenAIBackend(llm_cfg, cfg.llm.base_url, cfg.llm.model, fmt, n, token_param(cfg, models))
        backend.endpoint = cfg.llm.base_url
    else:
        server = stack.enter_context(LocalLlamaServer(
            cfg.llm.gguf, cfg.llm.server_ctx, cfg.llm.server_threads, cfg.llm.server_startup_timeout_s))
        fmt = "json_object_schema" if cfg.llm.response_format == "auto" else cfg.llm.response_format
        backend = OpenAIBackend(cfg.llm, server.base_url, server.model_name, fmt, n,
                                token_param(cfg, [{"owned_by": "me"}]))
        backend.endpoint = EMBEDDED_ENDPOINT
    if not hasattr(backend, "passages_per_prompt"):
        backend.passages_per_prompt = n
    stack.callback(backend.close)
    return backend


def llm_accounting(cfg: Config, backend: Backend, accepted: int, candidates: int | None = None) -> dict[str, Any]:
    """run.json["llm"]: usage counters, tokens per accepted negative and, with llm.price_per_million, a cost."""
    p = cfg.llm.price_per_million
    price = Price(p.prompt, p.completion, p.currency) if p is not None else None
    out = summarize(backend.usage.as_dict(), accepted, price, candidates)
    out["backend"] = cfg.backend
    engine = getattr(backend, "engine_info", None)
    if engine:
        out["engine"] = engine
    # same key for every backend: OpenAI-compatible clients report requests in flight (raised to a full
    # batch for a vLLM server), vLLM in process the sequences it decodes together
    out["concurrency"] = backend.concurrency
    return out


def open_backend(cfg: Config, stack: contextlib.ExitStack, strategies: int = 1) -> Backend:
    """The configured backend (`backend: openai | vllm`; see synthgen/engines.py), closed by `stack`."""
    return build_backend(cfg, stack, prompts_per_batch=cfg.batch_queries * strategies)


def worker_config(cfg: Config, backend: Backend | None) -> Config:
    """The config a Ray worker opens its own backend with. An embedded server the driver started is reached at
    its URL (workers share it rather than each starting one), with the same model name and request format, so
    requests and cache keys are the ones the local runner makes."""
    if backend is None or cfg.backend != "openai" or cfg.llm.base_url:
        return cfg
    llm = cfg.llm.model_copy(update={"base_url": backend.base_url, "model": backend.model,
                                     "response_format": backend.format_kind,
                                     "token_param": backend.token_param or "auto"})
    return cfg.model_copy(update={"llm": llm})
