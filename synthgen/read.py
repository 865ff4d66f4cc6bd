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

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from synthgen.config import InputConfig
from synthgen.input_files import LoaderError, decode_line, load_data_file, raw_lines, suffix_of
from synthgen.schema import PAIR_COLUMNS, Batch, empty_batch

log = logging.getLogger(__name__)


@dataclass
class InputStats:
    """Skips and truncations while reading, by kind: reported in run.json["input"]["skipped"]."""

    skipped: Counter = field(default_factory=Counter)
    truncated: int = 0

    def skip(self, kind: str, n: int = 1) -> None:
        self.skipped[kind] += n

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": dict(self.skipped), "truncated": self.truncated}


def sample_path() -> Path:
    """The small corpus shipped with the package (BEIR layout, written for synthgen)."""
    return Path(str(resources.files("synthgen") / "data" / "sample"))


def _lines(path: Path, stats: InputStats | None = None) -> Iterator[tuple[int, str]]:
    """Non-empty lines (gzip and a BOM handled), decoded as UTF-8 one by one: an undecodable line is skipped
    and counted."""
    if not path.is_file():
        raise LoaderError(f"missing file: {path}")
    for lineno, raw in raw_lines(path):
        try:
            line = decode_line(raw, lineno)
        except UnicodeDecodeError:
            if stats is None:
                raise LoaderError(f"{path}:{lineno}: invalid UTF-8") from None
            stats.skip("invalid_utf8")
            continue
        if line.strip():
            yield lineno, line


def _jsonl(path: Path, stats: InputStats | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in _lines(path, stats):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{path}:{lineno}: invalid JSON ({exc.msg}; a truncated line?)") from None
        if not isinstance(row, dict):
            raise LoaderError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, row


def _require(row: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    if key not in row:
        raise LoaderError(f"{path}:{lineno}: missing column {key!r}")
    return row[key]


def _passage(row: dict[str, Any], path: Path, lineno: int) -> str:
    text = str(_require(row, "text", path, lineno) or "")
    title = str(row.get("title") or "").strip()
    # Cranfield-style corpora repeat the title as the text's first sentence: don't double it.
    return text if not title or text.startswith(title) else f"{title}. {text}"


def iter_beir_corpus(folder: Path, stats: InputStats | None = None,
                     wanted: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Stream (id, passage) from corpus.jsonl; only `wanted` ids when given; empties and duplicates skipped."""
    path = folder / "corpus.jsonl"
    seen: set[str] = set()
    for lineno, row in _jsonl(path, stats):
        pid = str(_require(row, "_id", path, lineno))
        if wanted is not None and pid not in wanted:
            continue
        text = _passage(row, path, lineno)
        if pid in seen:
            if stats:
                stats.skip("duplicate_id")
            continue
        seen.add(pid)
        if not text.strip():
            if stats:
                stats.skip("empty_text")
            continue
        yield pid, text


def load_corpus(folder: Path) -> dict[str, str]:
    """corpus.jsonl -> {id: passage} in memory (mining and evaluation need every passage)."""
    return dict(iter_beir_corpus(folder))


def load_qrels(folder: Path) -> dict[str, set[str]]:
    """Every positive judgement in qrels/*.tsv (all splits): {query_id: {corpus_id, ...}}."""
    judged: dict[str, set[str]] = {}
    for path in sorted((folder / "qrels").glob("*.tsv")):
        with path.open("r", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter="\t")
            next(reader, None)
            for rec in reader:
                if len(rec) >= 2 and (len(rec) < 3 or not rec[2].strip() or float(rec[2]) > 0):
                    judged.setdefault(rec[0].strip(), set()).add(rec[1].strip())
    return judged


def _read_qrels_split(path: Path) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    with path.open("r", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise LoaderError(f"{path}: expected header 'query-id<TAB>corpus-id<TAB>score'")
        for lineno, rec in enumerate(reader, 2):
            if not rec:
                continue
            if len(rec) < 2:
                raise LoaderError(f"{path}:{lineno}: expected at least 2 columns")
            try:
                score = float(rec[2]) if len(rec) > 2 and rec[2].strip() else 1.0
            except ValueError:
                raise LoaderError(f"{path}:{lineno}: score {rec[2]!r} is not a number") from None
            if score > 0:
                pairs.append((rec[0].strip(), rec[1].strip()))
    return pairs


def load_beir(folder: Path, split: str = "train", stats: InputStats | None = None) -> Batch:
    """corpus.jsonl {_id,title,text} + queries.jsonl {_id,text} + qrels/<split>.tsv -> one row per positive."""
    stats = stats if stats is not None else InputStats()
    if not folder.is_dir():
        raise LoaderError(f"BEIR folder not found: {folder}")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise LoaderError(f"missing file: {qrels_path} (BEIR split {split!r})")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise LoaderError(f"missing file: {folder / name}")
    judgements = _read_qrels_split(qrels_path)
    queries: dict[str, str] = {}
    for n, r in _jsonl(folder / "queries.jsonl", stats):
        qid = str(_require(r, "_id", folder / "queries.jsonl", n))
        queries.setdefault(qid, str(_require(r, "text", folder / "queries.jsonl", n)))
    corpus = dict(iter_beir_corpus(folder, stats, wanted={pid for _, pid in judgements}))
    out = empty_batch(PAIR_COLUMNS)
    for qid, pid in judgements:
        if qid not in queries or pid not in corpus:
            stats.skip("qrels_missing_id")
            continue
        for col, val in zip(PAIR_COLUMNS, (qid, queries[qid], pid, corpus[pid])):
            out[col].append(val)
    return out


def load_pairs_jsonl(path: Path, query_field: str = "query", positive_field: str = "positive",
                     stats: InputStats | None = None, query_id_field: str = "query_id",
                     positive_id_field: str = "positive_id") -> Batch:
    """A JSONL of {query, positive} objects (field names configurable; ids optional)."""
    out = empty_batch(PAIR_COLUMNS)
    for lineno, row in _jsonl(path, stats):
        query = _require(row, query_field, path, lineno)
        positive = _require(row, positive_field, path, lineno)
        out["query_id"].append(str(row.get(query_id_field, f"q{lineno}")))
        out["query"].append(str(query or ""))
        out["positive_id"].append(str(row.get(positive_id_field, f"p{lineno}")))
        out["positive"].append(str(positive or ""))
    return out


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
        for lineno, line in _lines(path, stats):
            yield f"line{lineno}", line.strip()
    elif suffix_of(path) in (".jsonl", ".json", ".jsonl.gz", ".json.gz") and path.is_file():
        for lineno, row in _jsonl(path, stats):
            yield str(row.get(cfg.id_field, f"line{lineno}")), str(_require(row, cfg.text_field, path, lineno) or "")
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


def load_input_with_stats(cfg: InputConfig) -> tuple[Batch, InputStats]:
    """(query, positive) pairs with the skip counts; corpus-only input is an error here (see queries.py)."""
    stats = InputStats()
    path = Path(cfg.path) if cfg.path else sample_path()
    fmt = detect_format(cfg, path)
    if fmt == "corpus":
        raise LoaderError(f"{path} is a bare corpus: queries must be generated first (format=corpus)")
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
