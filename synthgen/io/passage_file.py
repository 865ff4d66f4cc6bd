"""A BEIR corpus.jsonl read on demand: one scan keeps the ids and each passage's byte span, a passage is parsed
again only when a miner or the scorer asks for it. A 1M-passage corpus then costs its ids and two small arrays
instead of every text held in memory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from synthgen.core.errors import LoaderError
from synthgen.io.beir import passage_text, require_field
from synthgen.io.input_files import decode_line


def passage_hash_update(h, pid: str, text: str) -> None:
    """The corpus fingerprint's per-passage step (the same bytes whether texts are in memory or on disk)."""
    h.update(pid.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")


class PassageFile(Sequence):
    """The passages of a plain (uncompressed) corpus.jsonl as a read-only sequence of strings."""

    def __init__(self, path: Path):
        self.path = path
        self.ids: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        h = hashlib.sha256()
        seen: set[str] = set()
        if path.stat().st_size == 0:
            raise LoaderError(f"{path}: empty file (0 bytes)")
        # The same rules as io.beir.iter_beir_corpus: first occurrence of an id wins, empty texts are skipped.
        with path.open("rb") as fh:
            offset = 0
            for lineno, raw in enumerate(fh, 1):
                start, offset = offset, offset + len(raw)
                pid, text = self._parse(raw, lineno)
                if pid is None or pid in seen:
                    continue
                seen.add(pid)
                if not text.strip():
                    continue
                self.ids.append(pid)
                starts.append(start)
                ends.append(offset)
                passage_hash_update(h, pid, text)
        self.fingerprint = h.hexdigest()
        self._start = np.asarray(starts, dtype=np.int64)
        self._size = np.asarray(ends, dtype=np.int64) - self._start
        self._fd: int | None = None

    def _parse(self, raw: bytes, lineno: int) -> tuple[str | None, str]:
        try:
            line = decode_line(raw, lineno)
        except UnicodeDecodeError:
            raise LoaderError(f"{self.path}:{lineno}: invalid UTF-8") from None
        if not line.strip():
            return None, ""
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{self.path}:{lineno}: invalid JSON ({exc.msg}; a truncated line?)") from None
        if not isinstance(row, dict):
            raise LoaderError(f"{self.path}:{lineno}: expected a JSON object")
        return str(require_field(row, "_id", self.path, lineno)), passage_text(row, self.path, lineno)

    def __len__(self) -> int:
        return len(self.ids)

    def _read(self, i: int) -> str:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        start = int(self._start[i])
        # pread: no shared file position, so threads (and a forked worker's own fd) never interfere.
        raw = os.pread(self._fd, int(self._size[i]), start)
        return self._parse(raw, 1 if start == 0 else 2)[1]

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._read(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._read(i)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self._read(i)

    def __getstate__(self):  # picklable for worker processes: the descriptor is reopened there
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
