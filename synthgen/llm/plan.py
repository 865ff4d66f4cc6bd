"""`synthgen generate` as steps: prompt, generate (the LLM), then the validation stage.

Built the same way on the driver (local runner, report) and in every Ray worker (`worker_steps`).
"""

from __future__ import annotations

import contextlib

from synthgen.core.config import Config
from synthgen.core.schema import Batch, positives_by_query
from synthgen.core.step import Step
from synthgen.llm.generate import GenerateStep
from synthgen.llm.prompt import PromptStep, load_templates


def run_positives(pairs: Batch) -> list[str]:
    """The run's distinct positives: validation's reference passages and, through it, the scorer's corpus (a fusion
    scorer standardises against them), so every place that prompts with the scorer must give it these."""
    return list(dict.fromkeys(pairs["positive"]))


def generate_steps(cfg: Config, pairs: Batch, backend, scorer, cache, templates) -> list[Step]:
    from synthgen.validate.steps import validation_steps

    judge_template = None
    if cfg.validate_.judge.enabled:
        (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
    return [
        PromptStep(templates, backend.passages_per_prompt, scorer),
        GenerateStep(backend, cache),
        *validation_steps(cfg.validate_, scorer, run_positives(pairs),
                          backend, judge_template, positives_by_query(pairs), cache=cache),
    ]


def worker_steps(stack: contextlib.ExitStack, cfg: Config, pairs: Batch, cache_path: str) -> list[Step]:
    """A Ray worker's copy: its own client to the same server (see engines.worker_config), scorer and cache."""
    from synthgen.core.cache import RunCache
    from synthgen.llm.engines import open_backend
    from synthgen.validate.load import load_scorer

    cache = RunCache(cache_path)
    stack.callback(cache.close)
    templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
    backend = open_backend(cfg, stack, len(templates))
    scorer = load_scorer(cfg.scorer)
    scorer.attach(cache)
    return generate_steps(cfg, pairs, backend, scorer, cache, templates)
