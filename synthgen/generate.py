"""generate: send each prompt to an OpenAI-compatible server and parse the passages it returns.

Async with bounded concurrency; tenacity retries HTTP faults (429, 5xx, timeouts, dropped connections)
and malformed output with backoff. A prompt that still fails becomes a rejected row with its error, so
one bad request never crashes a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import openai
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from synthgen.cache import RunCache, content_key
from synthgen.config import LLMConfig
from synthgen.pipeline import Step
from synthgen.schema import CANDIDATE_COLUMNS, Batch, NegativePassages, empty_batch, json_schema_for, strict_schema

log = logging.getLogger(__name__)


class ParseError(ValueError):
    """The model's text is not a JSON object with a non-empty list of passages."""


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_passages(text: str | None) -> list[str]:
    """Model text -> list of non-empty passages, or ParseError saying what is wrong."""
    if text is None or not text.strip():
        raise ParseError("empty completion")
    body = _FENCE.sub("", text.strip())
    try:
        # strict=False: small models put raw newlines inside strings; that is still usable text.
        data = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    if isinstance(data, list):  # a bare list is an unambiguous answer; accept it
        data = {"passages": data}
    try:
        parsed = NegativePassages.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise ParseError(f"wrong shape at {where}: {err['msg']}") from None
    passages = [p.strip() for p in parsed.passages if isinstance(p, str) and p.strip()]
    if not passages:
        raise ParseError("no non-empty passages")
    return passages


def response_format(kind: str, n: int, schema: dict[str, Any] | None = None,
                    name: str = "negatives") -> dict[str, Any] | None:
    """The `response_format` for a server kind; json_schema is sent strict (OpenAI's structured outputs)."""
    schema = json_schema_for(n) if schema is None else schema
    if kind == "json_schema":  # OpenAI, vLLM, native llama-server
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": strict_schema(schema)}}
    if kind == "json_object_schema":  # llama-cpp-python's server (rejects json_schema: HTTP 500)
        closed = dict(schema, additionalProperties=False) if schema.get("type") == "object" else schema
        return {"type": "json_object", "schema": closed}
    if kind == "json_object":
        return {"type": "json_object"}
    return None


# 408 Request Timeout and 409 Conflict (a busy/locked backend) are transient like 429 and 5xx.
RETRY_STATUS = frozenset({408, 409, 429})
# The token cap's parameter: OpenAI deprecated max_tokens for max_completion_tokens; older servers know only max_tokens.
TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ParseError, openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return False


def rejects_param(exc: BaseException, param: str) -> bool:
    """The server refused the request because of `param` (400/422 naming it): send the other one instead."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422) and param in str(exc)


@dataclass
class LLMUsage:
    """Request and token accounting for run.json."""

    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    failures: int = 0  # prompts given up on
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Completion:
    passages: list[str] | None
    error: str | None
    # False for transient faults (connection, timeout, 5xx): those are retried by a later run, not cached.
    cacheable: bool = True


OnResult = Callable[[int, Completion], None]


class RunAborted(RuntimeError):
    """Every request so far failed: stop instead of spinning through the rest of the run."""


class Backend:
    """What the generate step needs from an engine: open once per worker, complete many prompts, close.

    `complete` returns one Completion per prompt, in order, and never raises for a single bad prompt;
    `usage` accumulates requests, retries, failures and tokens; `model` names the model for provenance.
    """

    model: str
    usage: LLMUsage

    @property
    def concurrency(self) -> int | None:
        """How many requests the engine works on at once (run.json["llm"]["concurrency"]); None if unknown."""
        return None

    def open(self) -> None:
        """Start clients/engines; idempotent."""

    def close(self) -> None:
        """Release what `open` started; idempotent."""

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        """`on_result(i, completion)` is called as each result arrives, so callers can persist it at once."""
        raise NotImplementedError

    def cache_params(self) -> dict[str, Any]:
        """Everything besides the prompt that decides the output: part of the cache key."""
        return {"model": self.model}


def _transient(exc: BaseException) -> bool:
    return _retryable(exc) and not isinstance(exc, ParseError)


def retry_after_seconds(exc: BaseException | None, cap: float = 60.0) -> float | None:
    """The server's Retry-After (seconds form) on a 429/503, capped; None when absent."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(float(value), 0.0), cap) if value is not None else None
    except ValueError:
        return None


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

    async def _one(self, messages: list[dict[str, str]], req: "_Request") -> tuple[Any, str | None, bool]:
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
                retry=retry_if_exception(_retryable),
                before_sleep=count_retry,
                reraise=True,
            ):
                with attempt:
                    self.usage.requests += 1
                    extra: dict[str, Any] = {}
                    if req.format is not None:
                        extra["response_format"] = req.format
                    if self.cfg.seed is not None:
                        # A fixed seed would repeat the same malformed text on every retry.
                        extra["seed"] = self.cfg.seed + attempt.retry_state.attempt_number - 1
                    resp = await self._create(messages, req, extra)
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
            return None, f"{kind}: {str(exc)[:300]}", not _transient(exc)
        raise AssertionError("unreachable")

    async def _create(self, messages: list[dict[str, str]], req: "_Request", extra: dict[str, Any]) -> Any:
        param = self.token_param or TOKEN_PARAMS[0]
        kwargs = dict(model=self.model, messages=messages, temperature=req.temperature, top_p=self.cfg.top_p,
                      **extra)
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

    async def _many(self, prompts: list[list[dict[str, str]]], req: "_Request",
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
            schema: dict[str, Any] | None, max_tokens: int, temperature: float = 0.0) -> list[tuple[Any, str | None]]:
        """Any structured question (e.g. the validation judge): one (parsed value, error) per prompt."""
        fmt = None if self.format is None or schema is None else response_format(self.format_kind, 1, schema, "answer")
        return [(v, e) for v, e, _ in self._run(prompts, _Request(parse, fmt, max_tokens, temperature))]

    def complete(self, prompts: list[list[dict[str, str]]], on_result: OnResult | None = None) -> list[Completion]:
        req = _Request(parse_passages, self.format, self.cfg.max_tokens, self.cfg.temperature)
        callback = None if on_result is None else (lambda i, v, e, c: on_result(i, Completion(v, e, c)))
        return [Completion(v, e, c) for v, e, c in self._run(prompts, req, callback)]

    def _run(self, prompts: list[list[dict[str, str]]], req: "_Request",
             on_result: Callable[[int, Any, str | None, bool], None] | None = None) -> list[tuple[Any, str | None, bool]]:
        self.open()
        future = asyncio.run_coroutine_threadsafe(self._many(prompts, req, on_result), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C: stop waiting; results that arrived are already persisted
            raise


@dataclass(frozen=True)
class _Request:
    parse: Callable[[str | None], Any]
    format: dict[str, Any] | None
    max_tokens: int
    temperature: float


def _max_retries(backend: Backend) -> int:
    cfg = getattr(backend, "cfg", None)
    return getattr(cfg, "max_retries", 0)


def _rendered(messages: list[dict[str, str]]) -> Completion:
    try:
        return Completion(parse_passages(messages[-1]["content"]), None)
    except ParseError as exc:
        return Completion(None, f"ParseError: {exc}")


class GenerateStep(Step):
    """Prompt rows in, candidate rows out (one per passage); failed prompts come out as rejects."""

    name = "generate"

    def __init__(self, backend: Backend, cache: RunCache | None = None):
        self.backend, self.cache = backend, cache
        self.requests_sent = 0  # distinct prompts sent to the engine by this run (retries not counted)
        self.cache_hits = 0

    def setup(self) -> None:
        self.backend.open()

    def close(self) -> None:
        self.backend.close()

    def _complete(self, prompts: list[list[dict[str, str]]]) -> list[Completion]:
        """Cached completions for known prompts; each distinct missing prompt sent once and cached on arrival."""
        params = self.backend.cache_params()
        keys = [content_key(params, p) for p in prompts]
        known = self.cache.get_llm(keys) if self.cache is not None else {}
        retries = _max_retries(self.backend)
        # A failure cached under a smaller retry budget is asked again (with this run's retries).
        known = {k: v for k, v in known.items() if v.get("error") is None or v.get("max_retries", 0) >= retries}
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        todo = [k for k in first if k not in known]
        self.cache_hits += sum(1 for k in keys if k in known)

        def persist(j: int, comp: Completion) -> None:
            if self.cache is not None and comp.cacheable:
                value = {"passages": comp.passages, "error": comp.error}
                if comp.error is not None:
                    value["max_retries"] = retries
                self.cache.put_llm(todo[j], value)

        self.requests_sent += len(todo)
        fresh = dict(zip(todo, self.backend.complete([prompts[first[k]] for k in todo], on_result=persist)))
        if getattr(self.backend, "aborted", None):
            raise RunAborted(f"{self.backend.aborted}: check that the server is up and llm.base_url/llm.model "
                             "are right; finished results are cached and a rerun resumes")
        return [fresh[k] if k in fresh else Completion(known[k]["passages"], known[k]["error"]) for k in keys]

    def __call__(self, batch: Batch) -> Batch:
        prompts = [json.loads(m) for m in batch["messages"]]
        engines = batch.get("engine") or ["llm"] * len(prompts)
        # Rows rejected upstream (not_applicable, when called outside a Pipeline) pass through unsent.
        upstream = batch.get("reason") or [None] * len(prompts)
        # "template" strategies rendered their output themselves (e.g. the positive minus its answer).
        by_llm = [i for i, e in enumerate(engines) if e != "template" and upstream[i] is None]
        completions: list[Completion] = [
            Completion(None, None) if upstream[i] is not None else _rendered(prompts[i]) if e == "template" else None
            for i, e in enumerate(engines)]
        for i, comp in zip(by_llm, self._complete([prompts[i] for i in by_llm]) if by_llm else []):
            completions[i] = comp
        out = empty_batch(CANDIDATE_COLUMNS + ["reason"])
        for i, comp in enumerate(completions):
            texts: list[str | None] = comp.passages if comp.passages else [None]
            for text in texts:
                for col in ("query_id", "query", "positive_id", "positive", "strategy", "template_hash"):
                    out[col].append(batch[col][i])
                out["negative"].append(text)
                out["source"].append("synthetic")
                out["model"].append("template" if engines[i] == "template" else self.backend.model)
                for col in ("positive_score", "negative_score", "difficulty"):
                    out[col].append(None)
                out["reason"].append(upstream[i] if upstream[i] is not None else
                                     None if comp.error is None else f"generation_failed: {comp.error}")
        return out
