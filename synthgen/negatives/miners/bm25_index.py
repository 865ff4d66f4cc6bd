"""The BM25 index built in bounded memory and cached on disk, content-addressed by the corpus.

It computes exactly what `bm25s.BM25().index(bm25s.tokenize(texts, stopwords="en"))` computes (same tokens,
vocabulary order, Lucene idf and term weights, float32 CSC arrays with each column sorted by document), so
bm25s's own `retrieve` gives the same top-k. bm25s builds from every token list in memory (1.6 GB peak at 1M
passages); here passages are tokenised in chunks spilled to disk, then the CSC arrays are filled chunk by chunk
straight into the cache files. A second run over the same corpus loads those files (memory-mapped).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

K1, B = 1.5, 0.75  # bm25s defaults (method "lucene")
CHUNK_DOCS = 20_000  # passages tokenised per spilled chunk
BLOCK_NNZ = 4_000_000  # index entries filled per pass over the spill (~50 MB)
FORMAT = 1  # bump when the files' layout or the formula changes: old caches are then rebuilt
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # bm25s.tokenize's default pattern


def index_key(fingerprint: str, docs: int) -> str:
    key = {"corpus": fingerprint, "docs": docs, "bm25s": version("bm25s"), "k1": K1, "b": B, "format": FORMAT,
           "stopwords": "en"}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


class _Tokenizer:
    """bm25s.tokenize(lower=True, stopwords="en", no stemmer): token ids in first-seen order over the corpus."""

    def __init__(self) -> None:
        from bm25s.stopwords import STOPWORDS_EN

        self.stop = set(STOPWORDS_EN)
        self.vocab: dict[str, int] = {}

    def ids(self, text: str) -> list[int]:
        vocab = self.vocab
        out = []
        for tok in TOKEN_PATTERN.findall(text.lower()):
            if tok not in self.stop:
                out.append(vocab.setdefault(tok, len(vocab)))
        return out


def _tokenize_to_disk(texts: Sequence[str], spill: Path) -> tuple[dict[str, int], np.ndarray, int]:
    """Pass 1: per chunk, each document's distinct token ids and counts written to `spill`;
    returns (vocab, doc lengths, number of chunks)."""
    tk = _Tokenizer()
    lengths = np.zeros(len(texts), dtype=np.int64)
    chunks = 0
    for start in range(0, len(texts), CHUNK_DOCS):
        toks: list[int] = []
        tfs: list[int] = []
        distinct = np.zeros(min(CHUNK_DOCS, len(texts) - start), dtype=np.int32)
        for j, text in enumerate(texts[start:start + CHUNK_DOCS]):
            ids = tk.ids(text)
            counts = Counter(ids)
            lengths[start + j] = len(ids)
            distinct[j] = len(counts)
            toks.extend(counts.keys())
            tfs.extend(counts.values())
        np.save(spill / f"tok{chunks}.npy", np.asarray(toks, dtype=np.int32))
        np.save(spill / f"tf{chunks}.npy", np.asarray(tfs, dtype=np.float32))
        np.save(spill / f"n{chunks}.npy", distinct)
        chunks += 1
    return tk.vocab, lengths, chunks


def _idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    # math.log per token, as bm25s computes it (numpy's vectorised log may differ in the last bit).
    return np.array([math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for d in df.tolist()], dtype=np.float32)


def _write_npy_header(fh, dtype: str, n: int) -> None:
    np.lib.format.write_array_header_1_0(fh, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (n,)})


def _token_blocks(indptr: np.ndarray) -> list[tuple[int, int]]:
    """Token id ranges whose columns hold at most BLOCK_NNZ entries together (one token may exceed it alone)."""
    blocks, t0 = [], 0
    n_vocab = len(indptr) - 1
    while t0 < n_vocab:
        t1 = max(int(np.searchsorted(indptr, indptr[t0] + BLOCK_NNZ, side="right")) - 1, t0 + 1)
        blocks.append((t0, min(t1, n_vocab)))
        t0 = min(t1, n_vocab)
    return blocks


def build_index(texts: Sequence[str], dest: Path) -> None:
    """Write data.npy, indices.npy, indptr.npy, vocab.json, meta.json into `dest` (a new folder)."""
    spill = dest / "spill"
    spill.mkdir(parents=True)
    vocab, lengths, chunks = _tokenize_to_disk(texts, spill)
    n_docs, n_vocab = len(texts), len(vocab)
    df = np.zeros(n_vocab, dtype=np.int64)
    for c in range(chunks):
        df += np.bincount(np.load(spill / f"tok{c}.npy"), minlength=n_vocab)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    idf = _idf(df, n_docs)
    avg_len = lengths.mean() if n_docs else 0.0
    nnz = int(indptr[-1])
    # Pass 2, one block of token columns at a time, appended to the files: memory is one block, not the index.
    with (dest / "data.npy").open("wb") as data_fh, (dest / "indices.npy").open("wb") as idx_fh:
        _write_npy_header(data_fh, "float32", nnz)
        _write_npy_header(idx_fh, "int32", nnz)
        for t0, t1 in _token_blocks(indptr):
            base = indptr[t0]
            data = np.empty(int(indptr[t1] - base), dtype=np.float32)
            indices = np.empty(len(data), dtype=np.int32)
            fill = indptr[t0:t1] - base  # next free slot of each token's column in this block
            for c in range(chunks):
                tok, tf, distinct = (np.load(spill / f"{p}{c}.npy") for p in ("tok", "tf", "n"))
                doc = np.repeat(np.arange(c * CHUNK_DOCS, c * CHUNK_DOCS + len(distinct), dtype=np.int32), distinct)
                keep = (tok >= t0) & (tok < t1)
                tok, tf, doc = tok[keep], tf[keep], doc[keep]
                # bm25s (lucene): idf * tf / (k1 * (1 - b + b * len / avg_len) + tf), in float64, kept as float32.
                weight = (idf[tok] * (tf / (K1 * ((1 - B) + B * lengths[doc] / avg_len) + tf))).astype(np.float32)
                order = np.argsort(tok, kind="stable")  # by token, documents ascending within a token
                sorted_tok = tok[order] - t0
                uniq, first, count = np.unique(sorted_tok, return_index=True, return_counts=True)
                slot = fill[sorted_tok] + (np.arange(len(sorted_tok)) - np.repeat(first, count))
                data[slot] = weight[order]
                indices[slot] = doc[order]
                fill[uniq] += count
            data_fh.write(data.tobytes())
            idx_fh.write(indices.tobytes())
    np.save(dest / "indptr.npy", indptr)
    shutil.rmtree(spill)
    (dest / "vocab.json").write_text(json.dumps(list(vocab), ensure_ascii=False), encoding="utf-8")
    (dest / "meta.json").write_text(json.dumps({"docs": n_docs, "vocab": n_vocab, "nnz": nnz,
                                                "avg_doc_len": float(avg_len)}) + "\n", encoding="utf-8")


def cached_index(texts: Sequence[str], fingerprint: str, cache_dir: Path) -> tuple[Path, bool]:
    """The index folder for this corpus, built first when absent; (folder, True when it was already there)."""
    folder = cache_dir / f"bm25-{index_key(fingerprint, len(texts))}"
    if (folder / "meta.json").is_file():
        return folder, True
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build_index(texts, tmp)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder (no meta.json) from an old crash
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # interrupted: no half-built index is left behind
    return folder, False
