"""The passages a miner draws from: a BEIR corpus.jsonl, or a pairs file's distinct positives."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from synthgen.core.config import InputConfig
from synthgen.core.errors import LoaderError
from synthgen.core.package_data import sample_path
from synthgen.core.schema import Batch
from synthgen.io.beir import load_corpus
from synthgen.io.passage_file import PassageFile, passage_hash_update
from synthgen.validate.dedup import normalise

log = logging.getLogger(__name__)

NORM_CACHE_SIZE = 50_000  # normalised passages kept (about a few hundred queries' candidates): memory stays flat


@dataclass
class Corpus:
    """ids and texts: lists, or a PassageFile (texts read from disk on demand)."""

    ids: Sequence[str]
    texts: Sequence[str]
    _norm: dict[int, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def fingerprint(self) -> str:
        if isinstance(self.texts, PassageFile):
            return self.texts.fingerprint  # computed during its one scan of the file
        h = hashlib.sha256()
        for pid, text in zip(self.ids, self.texts):
            passage_hash_update(h, pid, text)
        return h.hexdigest()

    def normalised(self, i: int) -> str:
        if i not in self._norm:
            if len(self._norm) >= NORM_CACHE_SIZE:  # oldest first (dicts keep insertion order)
                for key in list(self._norm)[:len(self._norm) - NORM_CACHE_SIZE // 2]:
                    del self._norm[key]
            self._norm[i] = normalise(self.texts[i])
        return self._norm[i]


def input_folder(cfg: InputConfig) -> Path:
    return Path(cfg.path) if cfg.path else sample_path()


def load_mining_corpus(cfg: InputConfig, pairs: Batch) -> Corpus:
    """The BEIR corpus.jsonl of the input (read on demand from disk); for a JSONL of pairs, the distinct positives
    of all queries."""
    folder = input_folder(cfg)
    if cfg.format == "beir" or (cfg.format == "auto" and folder.is_dir()):
        path = folder / "corpus.jsonl"
        if path.is_file():
            passages = PassageFile(path)
            corpus = Corpus(passages.ids, passages)
        else:
            loaded = load_corpus(folder)  # raises the reader's missing-file error
            corpus = Corpus(list(loaded), list(loaded.values()))
        if not len(corpus):
            raise LoaderError(f"{folder / 'corpus.jsonl'}: no passages to mine from")
        return corpus
    seen: dict[str, str] = {}
    for pid, text in zip(pairs["positive_id"], pairs["positive"]):
        seen.setdefault(pid, text)
    log.warning("input is a file of pairs: mining from its %d distinct positives (no corpus.jsonl)", len(seen))
    return Corpus(list(seen), list(seen.values()))
