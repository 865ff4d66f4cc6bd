"""judge: an optional LLM asked whether the negative answers the query; drops the ones it says do."""

from __future__ import annotations

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch
from synthgen.core.step import USAGE_COUNTERS, Filter, Reject

JUDGE_SCHEMA = {"type": "object", "properties": {"answers": {"type": "boolean"}}, "required": ["answers"]}


def parse_judgement(text: str | None) -> bool:
    """{"answers": true|false}, or a bare yes/no; anything else is a ParseError (retried)."""
    import json

    from synthgen.llm.parse import ParseError

    body = (text or "").strip()
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("answers"), bool):
            return data["answers"]
    except json.JSONDecodeError:
        word = body.lower().split()[0].strip(".,!\"'") if body else ""
        if word in ("yes", "no"):
            return word == "yes"
    raise ParseError(f"judge reply is not {{\"answers\": bool}}: {body[:80]!r}")


class JudgeFilter(Filter):
    """Asks the LLM about rows whose difficulty sits just under `max_relative`; drops those it says answer.

    Relabelling near-threshold negatives with an LLM is how recent work catches false negatives that a
    scorer misses. A judge that fails to answer keeps the row and is counted in `failures`.
    """

    name = "judge"
    reads = ("query", "positive", "negative", "difficulty")
    counters = ("asked", "said_yes", "failures", *USAGE_COUNTERS)

    def __init__(self, backend, template, cfg: ValidateConfig, cache=None):
        from synthgen.llm.prompt import make_env

        self.backend, self.template, self.cfg, self.cache = backend, template, cfg, cache
        self.env = make_env()
        self.asked = self.said_yes = self.failures = 0

    def setup(self) -> None:
        self.backend.open()

    def counts(self) -> dict[str, int]:
        """For run.json / stats.json: rows asked, rows it dropped, and questions it failed to answer."""
        return {"asked": self.asked, "said_answers": self.said_yes, "failures": self.failures}

    def decide(self, batch: Batch) -> list[str | None]:
        lo = self.cfg.max_relative - self.cfg.judge.band
        rows = [i for i, d in enumerate(batch["difficulty"]) if d is not None and lo <= d < self.cfg.max_relative]
        reasons: list[str | None] = [None] * len(batch["negative"])
        if not rows:
            return reasons
        prompts = [self.template.render(self.env, query=batch["query"][i], negative=batch["negative"][i],
                                        positive=batch["positive"][i], n=1) for i in rows]
        from synthgen.core.cache import cached_ask

        # Cached like generations: a rerun or a threshold change does not ask the same question twice.
        answers = cached_ask(self.backend, self.cache, prompts, parse_judgement, JUDGE_SCHEMA,
                             self.cfg.judge.max_tokens, 0.0, task="judge")
        self.asked += len(rows)
        for i, (says_yes, error) in zip(rows, answers):
            if error is not None:
                self.failures += 1
            elif says_yes:
                self.said_yes += 1
                reasons[i] = Reject("judge_answers", "difficulty={difficulty:.3f}; the LLM judge says it answers",
                                    difficulty=batch["difficulty"][i])
        return reasons
