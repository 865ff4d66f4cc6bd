"""Per-request results from vLLM's engine loop (`backend: vllm`).

Every prompt of a batch is submitted at once, so vLLM schedules them together as `LLM.chat` would, but each
one is reported the engine step it finishes: its answer reaches the cache at once and a crash loses only
the requests still in flight. A prompt none of whose samples parse is resubmitted with the next attempt's
seed straight away, without waiting for the rest of the batch. The engine is behind a three-method
adapter (`submit`, `step`, `unfinished`, `abort`), so this module needs no vLLM import.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

from synthgen.llm.backend import LLMUsage
from synthgen.llm.parse import ParseError
from synthgen.llm.server import ServerError

log = logging.getLogger(__name__)

# (prompt index, parsed values of the samples that parsed, error when none did)
OnDone = Callable[[int, list[Any], "str | None"], None]


class EngineLoop(Protocol):
    def submit(self, index: int, attempt: int) -> str:
        """Queue prompt `index` with the sampling of `attempt`; returns the id its result will carry.
        Raises if the engine refuses the prompt."""

    def step(self) -> list[Any]:
        """One engine step: the requests that finished in it (vLLM RequestOutput-like objects)."""

    def unfinished(self) -> bool:
        """Whether the engine still holds any request."""

    def abort(self, request_ids: list[str]) -> None:
        """Drop requests still queued or running (after an error or Ctrl-C)."""


def raise_if_dead(exc: BaseException) -> None:
    """A dead engine fails every later prompt too: stop the run with one line instead of writing rejects."""
    if type(exc).__name__ == "EngineDeadError":
        raise ServerError("the vLLM engine died (its traceback is in the log above); "
                          "on CPU try a smaller batch_queries or vllm.max_num_seqs") from None


def _error_kind(error: str) -> str:
    return error.split(":", 1)[0]


def stream(engine: EngineLoop, count: int, parse: Callable[[str | None], Any], max_retries: int,
           usage: LLMUsage, on_done: OnDone) -> None:
    """Run prompts 0..count-1 through `engine`; `on_done` is called once per prompt, as soon as it is final:
    parsed, refused by the engine, or unparseable after `max_retries` retries."""
    attempts = [0] * count
    errors: list[str | None] = [None] * count
    running: dict[str, int] = {}

    def finish(i: int, values: list[Any], error: str | None) -> None:
        if not values:
            usage.failures += 1
            usage.errors[_error_kind(error)] = usage.errors.get(_error_kind(error), 0) + 1
        on_done(i, values, None if values else error)

    def submit(i: int) -> None:
        try:
            rid = engine.submit(i, attempts[i])
        except Exception as exc:  # noqa: BLE001 - a refused prompt (e.g. too long) would be refused again
            raise_if_dead(exc)
            usage.requests += 1
            finish(i, [], f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        running[rid] = i

    def settle(res: Any) -> None:
        i = running.pop(res.request_id)
        usage.requests += 1
        usage.prompt_tokens += len(res.prompt_token_ids or [])
        values: list[Any] = []
        for out in res.outputs:
            usage.completion_tokens += len(out.token_ids)
            try:
                values.append(parse(out.text))
            except ParseError as exc:
                cut = " (stopped at max_tokens)" if out.finish_reason == "length" else ""
                errors[i] = f"ParseError: {exc}{cut}"
        if values:
            if len(values) < len(res.outputs):  # the prompt succeeded, some of its n samples did not
                kind = "ParseError (some of n samples)"
                usage.errors[kind] = usage.errors.get(kind, 0) + len(res.outputs) - len(values)
            finish(i, values, None)
        elif attempts[i] < max_retries:
            attempts[i] += 1
            usage.retries += 1
            submit(i)
        else:
            finish(i, [], errors[i] or "no output")

    try:
        for i in range(count):
            submit(i)
        while running:
            try:
                finished = engine.step() if engine.unfinished() else None
            except Exception as exc:
                raise_if_dead(exc)
                raise
            if finished is None:  # the engine holds none of ours any more: say so instead of waiting forever
                for rid in list(running):
                    finish(running.pop(rid), [], "no output (the engine dropped the request)")
                break
            for res in finished:
                if res.request_id in running:  # anything else is not this call's
                    settle(res)
    except BaseException:
        if running:  # Ctrl-C or an engine error: leave nothing queued for the next call to trip over
            try:
                engine.abort(list(running))
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log.debug("vLLM abort: %s", exc)
        raise


class ChatLoop:
    """The EngineLoop over a `vllm.LLM`: each conversation goes in through the public `LLM.enqueue_chat`
    (rendered exactly as `LLM.chat` renders it) and its result comes out of `llm_engine.step()`."""

    def __init__(self, llm: Any, prompts: list[list[dict[str, str]]], params_for: Callable[[int], Any]):
        self.llm, self.prompts, self.params_for = llm, prompts, params_for
        self._params: dict[int, Any] = {}  # sampling per attempt, shared by the prompts as LLM.chat shares it

    def submit(self, index: int, attempt: int) -> str:
        if attempt not in self._params:
            self._params[attempt] = self.params_for(attempt)
        (internal,) = self.llm.enqueue_chat([self.prompts[index]], self._params[attempt], use_tqdm=False)
        # Results carry the id vLLM's counter gave the request; enqueue returns it with 8 random characters
        # appended ("<id>-<suffix>", or the bare id when vLLM's id randomisation is off).
        return internal.rsplit("-", 1)[0]

    def step(self) -> list[Any]:
        return [out for out in self.llm.llm_engine.step() if out.finished]

    def unfinished(self) -> bool:
        return self.llm.llm_engine.has_unfinished_requests()

    def abort(self, request_ids: list[str]) -> None:
        self.llm.llm_engine.abort_request(request_ids, internal=False)
