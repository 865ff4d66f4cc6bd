"""A BEIR corpus.jsonl read on demand: one scan keeps the ids and each passage's byte span, a passage is parsed
again only when a miner or the scorer asks for it. A 1M-passage corpus then costs its ids and two small arrays
instead of every text held in memory."""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from synthgen.core.errors import LoaderError
from synthgen.io.beir import json_object, passage_text, require_field
from synthgen.io.input_files import decode_line


def passage_hash_update(h, pid: str, text: str) -> None:
    """The corpus fingerprint's per-passage step (the same bytes whether texts are in memory or on disk)."""
    h.update(pid.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")


class _Lazy(Sequence):
    """A sequence whose items are made on access by `_get(i)`; slices give lists."""

    def _get(self, i: int) -> str:
        raise NotImplementedError

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._get(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._get(i)


class CompactIds(_Lazy):
    """Strings packed into one UTF-8 buffer plus offsets: ~16 bytes per id instead of a Python str each."""

    def __init__(self, ids: list[str]):
        encoded = [i.encode("utf-8") for i in ids]
        self._ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        self._buf = b"".join(encoded)

    def __len__(self) -> int:
        return len(self._ends)

    def _get(self, i: int) -> str:
        start = int(self._ends[i - 1]) if i else 0
        return self._buf[start:int(self._ends[i])].decode("utf-8")

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))


class PassageFile(_Lazy):
    """The passages of a plain (uncompressed) corpus.jsonl as a read-only sequence of strings."""

    def __init__(self, path: Path):
        self.path = path
        ids: list[str] = []
        starts, ends = array("q"), array("q")  # 8 bytes an entry while scanning, not a Python int
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
                ids.append(pid)
                starts.append(start)
                ends.append(offset)
                passage_hash_update(h, pid, text)
        del seen
        self.fingerprint = h.hexdigest()
        self.ids = CompactIds(ids)
        self._start = np.frombuffer(starts, dtype=np.int64)
        self._size = (np.frombuffer(ends, dtype=np.int64) - self._start).astype(np.int32)
        self._fd: int | None = None

    def _parse(self, raw: bytes, lineno: int) -> tuple[str | None, str]:
        try:
            line = decode_line(raw, lineno)
        except UnicodeDecodeError:
            raise LoaderError(f"{self.path}:{lineno}: invalid UTF-8") from None
        if not line.strip():
            return None, ""
        row = json_object(line, self.path, lineno)
        return str(require_field(row, "_id", self.path, lineno)), passage_text(row, self.path, lineno)

    def __len__(self) -> int:
        return len(self._start)

    def _get(self, i: int) -> str:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        start = int(self._start[i])
        # pread: no shared file position, so threads (and a forked worker's own fd) never interfere.
        raw = os.pread(self._fd, int(self._size[i]), start)
        return self._parse(raw, 1 if start == 0 else 2)[1]

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self._get(i)

    def __getstate__(self):  # picklable for worker processes: the descriptor is reopened there
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
