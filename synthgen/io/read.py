"""read: load (query, positive) pairs, or a bare corpus, from any of the formats users arrive with.

- BEIR folder: corpus.jsonl + queries.jsonl + qrels/<split>.tsv (several positives per query allowed)
- JSONL of pairs: {query, positive[, query_id, positive_id]} (field names configurable)
- Hugging Face dataset: a `save_to_disk` folder, .parquet/.csv/.jsonl files, or a Hub id (online users)
- bare corpus (format: corpus): JSONL with a text field, a .txt file (one passage per line) or a folder
  of .txt files (one passage per file); queries are written by the LLM first (see queries.py)

Corpora are streamed: a BEIR corpus.jsonl is read line by line and only the passages the qrels point to
are kept, so a 1M-passage corpus never sits in Python lists. Bad input is skipped with a count (empty
text, duplicate ids, qrels to missing ids, invalid UTF-8, over-long passages truncated) and the counts
end up in run.json; when nothing usable is left, one error says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from synthgen.core.config import InputConfig
from synthgen.core.errors import LoaderError
from synthgen.core.package_data import sample_path
from synthgen.core.schema import PAIR_COLUMNS, Batch, empty_batch
from synthgen.io.beir import iter_beir_corpus, jsonl_rows, load_beir, require_field, text_lines
from synthgen.io.input_files import InputStats, load_data_file, suffix_of

log = logging.getLogger(__name__)


def load_pairs_jsonl(path: Path, query_field: str = "query", positive_field: str = "positive",
                     stats: InputStats | None = None, query_id_field: str = "query_id",
                     positive_id_field: str = "positive_id") -> Batch:
    """A JSONL of {query, positive} objects (field names configurable; ids optional)."""
    out = empty_batch(PAIR_COLUMNS)
    for lineno, row in jsonl_rows(path, stats):
        values = pair_values(row, path, lineno, query_field, positive_field, query_id_field, positive_id_field)
        for col, v in zip(PAIR_COLUMNS, values):
            out[col].append(v)
    return out


def pair_values(row: dict, path: Path, lineno: int | None, query_field: str, positive_field: str,
                query_id_field: str, positive_id_field: str) -> tuple[str | None, str, str | None, str]:
    """One {query, positive} object -> (query_id, query, positive_id, positive). Missing ids are q<line>/p<line>;
    None when the line is not known yet (Ray's reader numbers the rows after reading: runners/ray_read)."""
    query = require_field(row, query_field, path, lineno or 0)
    positive = require_field(row, positive_field, path, lineno or 0)
    qid = str(row[query_id_field]) if query_id_field in row else None if lineno is None else f"q{lineno}"
    pid = str(row[positive_id_field]) if positive_id_field in row else None if lineno is None else f"p{lineno}"
    return qid, str(query or ""), pid, str(positive or "")


def hf_dataset(path: str, split: str):
    """A local save_to_disk folder or data files through `datasets`; anything else is passed on as a Hub id."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    p = Path(path)
    if p.is_dir() and ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()):
        ds = load_from_disk(str(p))
    elif p.is_file():
        ds = load_data_file(p)
    elif p.exists():
        raise LoaderError(f"{p}: not a `datasets` save_to_disk folder")
    else:  # a Hub id, for users who are online
        try:
            ds = load_dataset(path, split=split)
        except Exception as exc:  # noqa: BLE001 - any failure is one line
            raise LoaderError(f"cannot load dataset {path!r}: {type(exc).__name__}: {str(exc)[:160]}") from None
    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise LoaderError(f"{path}: no split {split!r} (have: {', '.join(ds)})")
        ds = ds[split]
    assert isinstance(ds, Dataset)
    return ds


def load_hf_pairs(cfg: InputConfig, stats: InputStats | None = None) -> Batch:
    """(query, positive) pairs from a Hugging Face dataset, read column by column (Arrow, no row dicts)."""
    ds = hf_dataset(str(cfg.path), cfg.split)
    for col in (cfg.query_field, cfg.positive_field):
        if col not in ds.column_names:
            raise LoaderError(f"{cfg.path}: missing column {col!r} (have: {', '.join(ds.column_names)})")
    n = len(ds)
    qids = ds[cfg.query_id_field] if cfg.query_id_field in ds.column_names else [f"q{i}" for i in range(n)]
    pids = ds[cfg.positive_id_field] if cfg.positive_id_field in ds.column_names else [f"p{i}" for i in range(n)]
    return {"query_id": [str(x) for x in qids], "query": [str(x or "") for x in ds[cfg.query_field]],
            "positive_id": [str(x) for x in pids], "positive": [str(x or "") for x in ds[cfg.positive_field]]}


def iter_corpus(cfg: InputConfig, stats: InputStats) -> Iterator[tuple[str, str]]:
    """A bare corpus as (id, passage): BEIR corpus.jsonl, JSONL, .txt (a line each), a folder of .txt files
    (a file each), or a Hugging Face dataset with a text column."""
    path = Path(cfg.path) if cfg.path else sample_path()
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        yield from iter_beir_corpus(path, stats)
    elif path.is_dir() and not (path / "dataset_info.json").exists():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise LoaderError(f"{path}: no corpus.jsonl and no .txt files")
        for f in files:
            try:
                text = f.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                stats.skip("invalid_utf8")
                continue
            yield f.stem, text
    elif path.suffix == ".txt":
        for lineno, line in text_lines(path, stats):
            yield f"line{lineno}", line.strip()
    elif suffix_of(path) in (".jsonl", ".json", ".jsonl.gz", ".json.gz") and path.is_file():
        for lineno, row in jsonl_rows(path, stats):
            yield str(row.get(cfg.id_field, f"line{lineno}")), str(require_field(row, cfg.text_field, path, lineno) or "")
    else:
        ds = hf_dataset(str(path), cfg.split)
        if cfg.text_field not in ds.column_names:
            raise LoaderError(f"{path}: missing column {cfg.text_field!r} (have: {', '.join(ds.column_names)})")
        ids = ds[cfg.id_field] if cfg.id_field in ds.column_names else None
        for i, text in enumerate(ds[cfg.text_field]):
            yield (str(ids[i]) if ids is not None else f"row{i}"), str(text or "")


def clean_corpus(cfg: InputConfig, stats: InputStats, limit: int | None = None) -> Iterator[tuple[str, str]]:
    """iter_corpus with empty passages and duplicate ids skipped and long ones truncated, all counted."""
    seen: set[str] = set()
    kept = 0
    for pid, text in iter_corpus(cfg, stats):
        if pid in seen:
            stats.skip("duplicate_id")
            continue
        seen.add(pid)
        if not text.strip():
            stats.skip("empty_text")
            continue
        if len(text) > cfg.max_passage_chars:
            text = text[: cfg.max_passage_chars]
            stats.truncated += 1
        yield pid, text
        kept += 1
        if limit is not None and kept >= limit:
            return


def detect_format(cfg: InputConfig, path: Path) -> str:
    if cfg.format != "auto":
        return cfg.format
    if path.is_dir():
        if (path / "qrels").is_dir() or (path / "queries.jsonl").is_file():
            return "beir"
        return "hf" if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() else "corpus"
    if suffix_of(path) in (".parquet", ".csv", ".csv.gz"):
        return "hf"
    if path.suffix == ".txt":
        return "corpus"
    if suffix_of(path) in (".jsonl", ".json", ".jsonl.gz", ".json.gz") or path.exists():
        return "pairs"
    return "hf"  # a Hub id


def pairs_input(cfg: InputConfig) -> tuple[Path, str]:
    """(path, format) of a pairs input (the packaged sample when no path is set); a bare corpus is an error."""
    path = Path(cfg.path) if cfg.path else sample_path()
    fmt = detect_format(cfg, path)
    if fmt == "corpus":
        raise LoaderError(f"{path} is a bare corpus: queries must be generated first (format=corpus)")
    return path, fmt


def load_input_with_stats(cfg: InputConfig) -> tuple[Batch, InputStats]:
    """(query, positive) pairs with the skip counts; corpus-only input is an error here (see queries.py)."""
    stats = InputStats()
    path, fmt = pairs_input(cfg)
    if fmt == "beir":
        batch = load_beir(path, cfg.split, stats)
    elif fmt == "hf":
        batch = load_hf_pairs(cfg, stats)
    else:
        batch = load_pairs_jsonl(path, cfg.query_field, cfg.positive_field, stats,
                                 cfg.query_id_field, cfg.positive_id_field)
    return finish_pairs(batch, cfg, stats, str(path)), stats


def finish_pairs(batch: Batch, cfg: InputConfig, stats: InputStats, where: str) -> Batch:
    """Skip empty and repeated pairs, truncate long positives, cap the queries; error when nothing is left."""
    keep = []
    seen: set[tuple[str, str]] = set()
    for i, (q, p) in enumerate(zip(batch["query"], batch["positive"])):
        if not q.strip() or not p.strip():
            stats.skip("empty_text")
            continue
        ids = (batch["query_id"][i], batch["positive_id"][i])
        if ids in seen:  # the same judgement twice would double its negatives
            stats.skip("duplicate_pair")
            continue
        seen.add(ids)
        if len(p) > cfg.max_passage_chars:
            batch["positive"][i] = p[: cfg.max_passage_chars]
            stats.truncated += 1
        keep.append(i)
    batch = {c: [v[i] for i in keep] for c, v in batch.items()}
    if cfg.max_queries is not None:
        chosen = set(list(dict.fromkeys(batch["query_id"]))[: cfg.max_queries])
        idx = [i for i, q in enumerate(batch["query_id"]) if q in chosen]
        batch = {c: [v[i] for i in idx] for c, v in batch.items()}
    for kind, n in stats.skipped.items():
        log.warning("%s: skipped %d rows (%s)", where, n, kind)
    if stats.truncated:
        log.warning("%s: truncated %d passages to %d characters", where, stats.truncated, cfg.max_passage_chars)
    if not batch["query"]:
        raise LoaderError(f"no usable (query, positive) pairs in {where}")
    return batch


def load_input(cfg: InputConfig) -> Batch:
    """Dispatch on the configured input; returns a batch of PAIR_COLUMNS."""
    return load_input_with_stats(cfg)[0]
