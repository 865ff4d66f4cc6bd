"""An OpenAI-compatible server as a backend: async with bounded concurrency; tenacity retries HTTP faults
(408/409/429, 5xx, timeouts, dropped connections) and malformed output with backoff."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Callable

import openai
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from synthgen.core.config import LLMConfig
from synthgen.llm.backend import (TOKEN_PARAMS, Backend, Completion, LLMUsage, OnResult, Request, error_text,
                                  rejects_param, retry_after_seconds, retryable, transient)
from synthgen.llm.parse import parse_passages, response_format

log = logging.getLogger(__name__)


class OpenAIBackend(Backend):
    """An AsyncOpenAI client on a private event loop thread: opened once, used from sync code."""

    def __init__(self, cfg: LLMConfig, base_url: str, model: str, response_format_kind: str, n: int,
                 token_param: str | None = None):
        self.cfg, self.base_url, self.model, self.n = cfg, base_url, model, n
        self.format_kind = response_format_kind
        self.format = response_format(response_format_kind, n)
        # None = try max_completion_tokens, fall back to max_tokens when the server refuses it (then kept).
        self.token_param = token_param
        self._auto_token_param = token_param is None
        self.usage = LLMUsage()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self.successes = 0
        self.aborted: str | None = None  # set when the first `fail_fast_after` prompts all failed

    @property
    def concurrency(self) -> int:
        return self.cfg.concurrency

    def open(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="synthgen-llm", daemon=True)
        self._thread.start()
        api_key = os.environ.get(self.cfg.api_key_env) or "not-needed"
        # Retries are ours (tenacity), so the client's own are off.
        self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key,
                                          timeout=self.cfg.timeout_s, max_retries=0)

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._client = None

    def cache_params(self) -> dict[str, Any]:
        c = self.cfg
        # Not max_retries: a retry policy does not change an answer (cached failures record their retries).
        return {"model": self.model, "temperature": c.temperature, "top_p": c.top_p, "max_tokens": c.max_tokens,
                "seed": c.seed, "response_format": self.format}

    async def _one(self, messages: list[dict[str, str]], req: "Request") -> tuple[Any, str | None, bool]:
        def count_retry(_: Any) -> None:
            self.usage.retries += 1

        backoff = wait_exponential_jitter(multiplier=0.5, max=20)

        def wait(state: Any) -> float:
            # Respect the server's Retry-After on 429/503; otherwise exponential backoff with jitter.
            hinted = retry_after_seconds(state.outcome.exception() if state.outcome else None)
            return hinted if hinted is not None else backoff(state)

        if self.aborted:
            return None, f"RunAborted: {self.aborted}", False
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.cfg.max_retries + 1),
                wait=wait,
                retry=retry_if_exception(retryable),
                before_sleep=count_retry,
                reraise=True,
            ):
                with attempt:
                    self.usage.requests += 1
                    resp = await self._create(self.body(messages, req, attempt.retry_state.attempt_number - 1), req)
                    if resp.usage is not None:
                        self.usage.prompt_tokens += resp.usage.prompt_tokens or 0
                        self.usage.completion_tokens += resp.usage.completion_tokens or 0
                    value = req.parse(resp.choices[0].message.content)
                    self.successes += 1
                    return value, None, True
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
            kind = type(exc).__name__
            self.usage.failures += 1
            self.usage.errors[kind] = self.usage.errors.get(kind, 0) + 1
            if self.successes == 0 and self.usage.failures >= self.cfg.fail_fast_after and not self.aborted:
                hint = ("; the server rejects this structured-output request: try llm.response_format="
                        "json_object_schema, json_object or none" if "response_format" in str(exc) else "")
                self.aborted = (f"the first {self.usage.failures} requests to {self.base_url} all failed "
                                f"(last: {kind}: {str(exc)[:160]}){hint}")
            return None, error_text(exc), not transient(exc)
        raise AssertionError("unreachable")

    def body(self, messages: list[dict[str, str]], req: "Request", retry: int = 0) -> dict[str, Any]:
        """The chat-completions request body for `messages` (its `retry`-th retry): what this client sends, and
        what Ray's HTTP processor (runners/ray_llm) sends for the same prompt."""
        body: dict[str, Any] = dict(model=self.model, messages=messages, temperature=req.temperature,
                                    top_p=self.cfg.top_p)
        if req.format is not None:
            body["response_format"] = req.format
        if self.cfg.seed is not None:
            body["seed"] = self.cfg.seed + retry  # a fixed seed would repeat the same malformed text on every retry
        body[self.token_param or TOKEN_PARAMS[0]] = req.max_tokens
        return body

    def passages_request(self) -> "Request":
        """What `complete` asks for: the passages, parsed by parse_passages, in this backend's response format."""
        return Request(parse_passages, self.format, self.cfg.max_tokens, self.cfg.temperature)

    async def _create(self, body: dict[str, Any], req: "Request") -> Any:
        param = self.token_param or TOKEN_PARAMS[0]
        kwargs = {k: v for k, v in body.items() if k != param}
        try:
            resp = await self._client.chat.completions.create(**kwargs, **{param: req.max_tokens})
            if isinstance(resp, str):  # the openai client hands back a body that is not JSON as text
                raise ValueError(f"the server's answer is not JSON: {resp.strip()[:80]!r}")
        except openai.APIStatusError as exc:
            if not self._auto_token_param or not rejects_param(exc, param):
                raise
            self.token_param = TOKEN_PARAMS[1]
            log.info("%s does not accept %s: sending %s", self.base_url, param, self.token_param)
            self.usage.requests += 1
            return await self._client.chat.completions.create(**kwargs, **{self.token_param: req.max_tokens})
        used = getattr(resp.usage, "completion_tokens", None) or 0
        if self.token_param is None and param == TOKEN_PARAMS[0] and used > req.max_tokens:
            # Accepted but not honoured (an unknown field silently dropped): the old name from now on.
            self.token_param = TOKEN_PARAMS[1]
            log.warning("%s ignored %s (%d tokens for a cap of %d): sending %s", self.base_url, param, used,
                        req.max_tokens, self.token_param)
        return resp

    async def _many(self, prompts: list[list[dict[str, str]]], req: "Request",
                    on_result: Callable[[int, Any, str | None, bool], None] | None = None,
                    ) -> list[tuple[Any, str | None, bool]]:
        sem = asyncio.Semaphore(self.cfg.concurrency)

        async def bounded(i: int, msgs: list[dict[str, str]]) -> tuple[Any, str | None, bool]:
            async with sem:
                result = await self._one(msgs, req)
            if on_result is not None:
                on_result(i, *result)
            return result

        return await asyncio.gather(*(bounded(i, m) for i, m in enumerate(prompts)))

    def ask(self, prompts: list[list[dict[str, str]]], parse: Callable[[str | None], Any],
            schema: dict[str, Any] | None, max_tokens: int, temperature: float = 0.0,
            on_result: Callable[[int, Any, str | None], None] | None = None) -> list[tuple[Any, str | None]]:
        """Any structured question (e.g. the validation judge): one (parsed value, error) per prompt;
        `on_result(i, value, error)` as each answer arrives (so a crash loses none that finished)."""
        fmt = None if self.format is None or schema is None else response_format(self.format_kind, 1, schema, "answer")
        callback = None if on_result is None else (lambda i, v, e, _c: on_result(i, v, e))
        return [(v, e) for v, e, _ in self._run(prompts, Request(parse, fmt, max_tokens, temperature), callback)]

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        req = self.passages_request()
        callback = None if on_result is None else (lambda i, v, e, c: on_result(i, Completion(v, e, c)))
        return [Completion(v, e, c) for v, e, c in self._run(prompts, req, callback)]

    def _run(self, prompts: list[list[dict[str, str]]], req: "Request",
             on_result: Callable[[int, Any, str | None, bool], None] | None = None) -> list[tuple[Any, str | None, bool]]:
        self.open()
        future = asyncio.run_coroutine_threadsafe(self._many(prompts, req, on_result), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C: stop waiting; results that arrived are already persisted
            raise
