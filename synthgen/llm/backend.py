"""The backend interface every LLM engine implements (OpenAI-compatible client, vLLM), with its accounting
and the retry policy: which faults are transient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import openai

from synthgen.llm.parse import ParseError

RETRY_STATUS = frozenset({408, 409, 429})
# The token cap's parameter: OpenAI deprecated max_tokens for max_completion_tokens; older servers know only max_tokens.
TOKEN_PARAMS = ("max_completion_tokens", "max_tokens")


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ParseError, openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return False


def rejects_param(exc: BaseException, param: str) -> bool:
    """The server refused the request because of `param` (400/422 naming it): send the other one instead."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422) and param in str(exc)


@dataclass(frozen=True)
class Request:
    """What a backend is asked besides the messages: how to parse, the response format, the caps."""

    parse: Callable[[str | None], Any]
    format: dict[str, Any] | None
    max_tokens: int
    temperature: float


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


def error_text(exc: BaseException) -> str:
    """A failed prompt's error as rejects/ and the cache record it: 'ParseError: invalid JSON ...'."""
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def transient(exc: BaseException) -> bool:
    return retryable(exc) and not isinstance(exc, ParseError)


def retry_after_seconds(exc: BaseException | None, cap: float = 60.0) -> float | None:
    """The server's Retry-After (seconds form) on a 429/503, capped; None when absent."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(float(value), 0.0), cap) if value is not None else None
    except ValueError:
        return None
