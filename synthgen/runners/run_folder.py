"""The run folder: named by what changes the output (identity.py), announced first with why it is new or
reused, with the output folder's shared cache opened beside it."""

from __future__ import annotations

import logging
from pathlib import Path

from synthgen.core.cache import RunCache, shared_cache_path
from synthgen.core.config import Config
from synthgen.runners.run_identity import announce, resolve_run

log = logging.getLogger(__name__)


def start_run(cfg: Config, command: str, corpus_only: bool = False) -> tuple[Path, RunCache]:
    """The run folder (named by what changes the output, see identity.py), logged first with why it is new
    or reused, and the output folder's shared cache."""
    ident = resolve_run(cfg, command, corpus_only)
    announce(ident)
    ident.save()
    return ident.folder, open_cache(shared_cache_path(cfg.output_dir, cfg.cache_file))


def open_cache(path: Path) -> RunCache:
    """The shared cache at `path`, logged with what it already holds (a rerun shows what it will reuse)."""
    cache = RunCache(path)
    log.info("cache: %s (%d LLM answers, %d scores, %d embeddings)", cache.path, cache.count("llm"),
             cache.count("scores"), cache.count("embeddings"))
    return cache
