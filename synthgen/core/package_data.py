"""Files shipped inside the package: the sample corpus and the prompt templates (package data, so a wheel has
them too; in a checkout the top-level `prompts/` is a link to the same folder)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_path() -> Path:
    """The small corpus shipped with the package (BEIR layout, written for synthgen)."""
    return Path(str(resources.files("synthgen") / "data" / "sample"))


def default_prompts_dir() -> Path:
    """The templates shipped inside the package (`synthgen/prompts/`)."""
    return Path(str(resources.files("synthgen") / "prompts"))
