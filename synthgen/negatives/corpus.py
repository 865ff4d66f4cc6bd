"""The passages a miner draws from: a BEIR corpus.jsonl, or a pairs file's distinct positives."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from synthgen.core.config import InputConfig
from synthgen.core.errors import LoaderError
from synthgen.core.package_data import sample_path
from synthgen.core.schema import Batch
from synthgen.io.beir import load_corpus
from synthgen.validate.dedup import normalise

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]
    _norm: dict[int, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for pid, text in zip(self.ids, self.texts):
            h.update(pid.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
        return h.hexdigest()

    def normalised(self, i: int) -> str:
        if i not in self._norm:
            self._norm[i] = normalise(self.texts[i])
        return self._norm[i]


def input_folder(cfg: InputConfig) -> Path:
    return Path(cfg.path) if cfg.path else sample_path()


def load_mining_corpus(cfg: InputConfig, pairs: Batch) -> Corpus:
    """The BEIR corpus.jsonl of the input; for a JSONL of pairs, the distinct positives of all queries."""
    folder = input_folder(cfg)
    if cfg.format == "beir" or (cfg.format == "auto" and folder.is_dir()):
        corpus = load_corpus(folder)
        if not corpus:
            raise LoaderError(f"{folder / 'corpus.jsonl'}: no passages to mine from")
        return Corpus(list(corpus), list(corpus.values()))
    seen: dict[str, str] = {}
    for pid, text in zip(pairs["positive_id"], pairs["positive"]):
        seen.setdefault(pid, text)
    log.warning("input is a file of pairs: mining from its %d distinct positives (no corpus.jsonl)", len(seen))
    return Corpus(list(seen), list(seen.values()))
