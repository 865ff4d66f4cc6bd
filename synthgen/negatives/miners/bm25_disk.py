"""bm25s retrieval over an index folder written by bm25_index.py, with the index left on disk.

bm25s scores a query by adding, token by token, that token's CSC column into a score per document. Here each
column is read with pread when a query needs it instead of keeping (or memory-mapping, which counts as resident
memory once touched) the whole index: the file stays in the OS page cache, the process holds one query's columns.
Tokenising, the per-token sum order, top-k and tie order are bm25s's own, so results are identical.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bm25s
import numpy as np


def _data_offset(path: Path) -> tuple[int, np.dtype]:
    with path.open("rb") as fh:
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        _shape, _order, dtype = read[np.lib.format.read_magic(fh)](fh)
        return fh.tell(), dtype


class DiskBM25(bm25s.BM25):
    """A bm25s.BM25 whose `data` and `indices` arrays are read from their .npy files per query token."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder
        self._files = {}
        for name in ("data", "indices"):
            offset, dtype = _data_offset(folder / f"{name}.npy")
            self._files[name] = (str(folder / f"{name}.npy"), offset, dtype)
        self._fds: dict[str, int] = {}

    def _column(self, name: str, start: int, end: int) -> np.ndarray:
        path, offset, dtype = self._files[name]
        if name not in self._fds:
            self._fds[name] = os.open(path, os.O_RDONLY)
        size = dtype.itemsize
        return np.frombuffer(os.pread(self._fds[name], (end - start) * size, offset + start * size), dtype=dtype)

    def get_scores_from_ids(self, query_tokens_ids, weight_mask=None) -> np.ndarray:
        indptr, num_docs = self.scores["indptr"], self.scores["num_docs"]
        scores = np.zeros(num_docs, dtype=np.dtype(self.dtype))
        for token in np.asarray(query_tokens_ids, dtype=np.int64):
            if token >= len(indptr) - 1:  # the empty token: no column
                continue
            start, end = int(indptr[token]), int(indptr[token + 1])
            np.add.at(scores, self._column("indices", start, end), self._column("data", start, end))
        if weight_mask is not None:
            scores *= weight_mask
        return scores

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)


def load_retriever(folder: Path, on_disk: bool = True) -> bm25s.BM25:
    """The index in `folder` as a bm25s retriever: columns read per query (on_disk) or arrays loaded in memory."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    vocab = {tok: i for i, tok in enumerate(json.loads((folder / "vocab.json").read_text(encoding="utf-8")))}
    vocab.setdefault("", len(vocab))  # bm25s.BM25.index adds the empty token last
    retriever = DiskBM25(folder) if on_disk else bm25s.BM25()
    scores = {"indptr": np.load(folder / "indptr.npy"), "num_docs": meta["docs"]}
    if not on_disk:
        scores.update(data=np.load(folder / "data.npy"), indices=np.load(folder / "indices.npy"))
    retriever.scores = scores
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
    retriever.nonoccurrence_array = None
    return retriever
