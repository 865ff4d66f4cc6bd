"""generate: send each prompt to an OpenAI-compatible server and parse the passages it returns.

Async with bounded concurrency; tenacity retries HTTP faults (429, 5xx, timeouts, dropped connections)
and malformed output with backoff. A prompt that still fails becomes a rejected row with its error, so
one bad request never crashes a run.
"""

from __future__ import annotations

import json
import logging

from synthgen.core.cache import RunCache, content_key
from synthgen.core.schema import CANDIDATE_COLUMNS, Batch, empty_batch
from synthgen.core.step import USAGE_COUNTERS, Reject, Step, reason_columns
from synthgen.llm.backend import Backend, Completion, RunAborted
from synthgen.llm.parse import ParseError, parse_passages

log = logging.getLogger(__name__)


def _max_retries(backend: Backend) -> int:
    cfg = getattr(backend, "cfg", None)
    return getattr(cfg, "max_retries", 0)


def _rendered(messages: list[dict[str, str]]) -> Completion:
    try:
        return Completion(parse_passages(messages[-1]["content"]), None)
    except ParseError as exc:
        return Completion(None, f"ParseError: {exc}")


def usable(cached: dict, retries: int) -> bool:
    """A cached answer stands, unless it is a failure cached under a smaller retry budget than `retries` (then the
    prompt is asked again, with this run's retries)."""
    return cached.get("error") is None or cached.get("max_retries", 0) >= retries


def cache_value(comp: Completion, retries: int) -> dict:
    """What the shared cache keeps for a prompt's answer; a failure records the retries it was given."""
    value = {"passages": comp.passages, "error": comp.error}
    if comp.error is not None:
        value["max_retries"] = retries
    return value


class GenerateStep(Step):
    """Prompt rows in, candidate rows out (one per passage); failed prompts come out as rejects."""

    name = "generate"
    reads = ("query_id", "query", "positive_id", "positive", "strategy", "template_hash", "messages")
    writes = tuple(CANDIDATE_COLUMNS)
    # For the run report (a Ray run adds up its workers' copies): see core.step.read_counters.
    counters = ("requests_sent", "cache_hits", *USAGE_COUNTERS)

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
        known = {k: v for k, v in known.items() if usable(v, retries)}
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        todo = [k for k in first if k not in known]
        self.cache_hits += sum(1 for k in keys if k in known)

        def persist(j: int, comp: Completion) -> None:
            if self.cache is not None and comp.cacheable:
                self.cache.put_llm(todo[j], cache_value(comp, retries))

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
        out = empty_batch(CANDIDATE_COLUMNS)
        reasons: list[str | None] = []
        details: list[str | None] = []
        upstream_details = batch.get("details") or [None] * len(prompts)
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
                failed = None if comp.error is None else Reject("generation_failed", "{error}", error=comp.error)
                reasons.append(upstream[i] if upstream[i] is not None else failed)
                details.append(upstream_details[i] if upstream[i] is not None else failed and failed.details())
        return {**out, **reason_columns(reasons), "details": details}
