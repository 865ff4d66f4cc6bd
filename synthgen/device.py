"""`device: auto` for the scorer and the dense miner: the best accelerator torch can use here."""

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
