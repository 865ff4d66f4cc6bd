"""read: load (query, positive) pairs from the embedded sample, a BEIR folder or a JSONL of pairs."""

from __future__ import annotations

import csv
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from synthgen.config import InputConfig
from synthgen.schema import PAIR_COLUMNS, Batch, empty_batch

log = logging.getLogger(__name__)


class LoaderError(ValueError):
    """Bad input; the message is one line naming the file and the missing piece."""


def sample_path() -> Path:
    """The small corpus shipped with the package (BEIR layout, written for synthgen)."""
    return Path(str(resources.files("synthgen") / "data" / "sample"))


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise LoaderError(f"missing file: {path}")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LoaderError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise LoaderError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, row


def _require(row: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    if key not in row:
        raise LoaderError(f"{path}:{lineno}: missing column {key!r}")
    return row[key]


def load_corpus(folder: Path) -> dict[str, str]:
    """corpus.jsonl {_id, title, text} -> {id: passage}; the title is prefixed unless the text starts with it."""
    corpus: dict[str, str] = {}
    for lineno, row in _jsonl(folder / "corpus.jsonl"):
        pid = str(_require(row, "_id", folder / "corpus.jsonl", lineno))
        text = str(_require(row, "text", folder / "corpus.jsonl", lineno))
        title = str(row.get("title") or "").strip()
        # Cranfield-style corpora repeat the title as the text's first sentence: don't double it.
        corpus[pid] = text if not title or text.startswith(title) else f"{title}. {text}"
    return corpus


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


def load_beir(folder: Path, split: str = "train") -> Batch:
    """corpus.jsonl {_id,title,text} + queries.jsonl {_id,text} + qrels/<split>.tsv -> one row per positive."""
    if not folder.is_dir():
        raise LoaderError(f"BEIR folder not found: {folder}")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise LoaderError(f"missing file: {qrels_path} (BEIR split {split!r})")
    corpus = load_corpus(folder)
    queries = {
        str(_require(r, "_id", folder / "queries.jsonl", n)): str(_require(r, "text", folder / "queries.jsonl", n))
        for n, r in _jsonl(folder / "queries.jsonl")
    }
    out = empty_batch(PAIR_COLUMNS)
    missing = 0
    with qrels_path.open("r", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise LoaderError(f"{qrels_path}: expected header 'query-id<TAB>corpus-id<TAB>score'")
        for lineno, rec in enumerate(reader, 2):
            if not rec:
                continue
            if len(rec) < 2:
                raise LoaderError(f"{qrels_path}:{lineno}: expected at least 2 columns")
            qid, pid = rec[0].strip(), rec[1].strip()
            score = float(rec[2]) if len(rec) > 2 and rec[2].strip() else 1.0
            if score <= 0:
                continue
            if qid not in queries or pid not in corpus:
                missing += 1
                continue
            for col, val in zip(PAIR_COLUMNS, (qid, queries[qid], pid, corpus[pid])):
                out[col].append(val)
    if missing:
        log.warning("%s: skipped %d qrels pointing to missing query or passage ids", qrels_path, missing)
    return out


def load_pairs_jsonl(path: Path, query_field: str = "query", positive_field: str = "positive") -> Batch:
    """A JSONL of {query, positive} objects (field names configurable; ids optional)."""
    out = empty_batch(PAIR_COLUMNS)
    for lineno, row in _jsonl(path):
        query = _require(row, query_field, path, lineno)
        positive = _require(row, positive_field, path, lineno)
        out["query_id"].append(str(row.get("query_id", f"q{lineno}")))
        out["query"].append(str(query))
        out["positive_id"].append(str(row.get("positive_id", f"p{lineno}")))
        out["positive"].append(str(positive))
    return out


def load_input(cfg: InputConfig) -> Batch:
    """Dispatch on the configured input; returns a batch of PAIR_COLUMNS."""
    path = Path(cfg.path) if cfg.path else sample_path()
    fmt = cfg.format
    if fmt == "auto":
        fmt = "beir" if path.is_dir() else "pairs"
    if fmt == "beir":
        batch = load_beir(path, cfg.split)
    else:
        batch = load_pairs_jsonl(path, cfg.query_field, cfg.positive_field)
    # Empty strings cannot be prompted or scored: skip them with a count rather than fail later.
    keep = [i for i, (q, p) in enumerate(zip(batch["query"], batch["positive"])) if q.strip() and p.strip()]
    if len(keep) < len(batch["query"]):
        log.warning("skipped %d pairs with an empty query or positive", len(batch["query"]) - len(keep))
        batch = {c: [v[i] for i in keep] for c, v in batch.items()}
    if cfg.max_queries is not None:
        wanted: list[str] = []
        for qid in batch["query_id"]:
            if qid not in wanted:
                wanted.append(qid)
            if len(wanted) == cfg.max_queries:
                break
        chosen = set(wanted)
        idx = [i for i, q in enumerate(batch["query_id"]) if q in chosen]
        batch = {c: [v[i] for i in idx] for c, v in batch.items()}
    if not batch["query"]:
        raise LoaderError(f"no usable (query, positive) pairs in {path}")
    return batch
