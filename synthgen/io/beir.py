"""BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) read as streams, and the JSONL line helpers
the other readers share: bad lines are skipped with a count, missing fields are one clear error."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from synthgen.core.errors import LoaderError
from synthgen.core.schema import PAIR_COLUMNS, Batch, empty_batch
from synthgen.io.input_files import InputStats, decode_line, raw_lines


def text_lines(path: Path, stats: InputStats | None = None) -> Iterator[tuple[int, str]]:
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


def json_object(line: str, path: Path, lineno: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LoaderError(f"{path}:{lineno}: invalid JSON ({exc.msg}; a truncated line?)") from None
    if not isinstance(row, dict):
        raise LoaderError(f"{path}:{lineno}: expected a JSON object")
    return row


def jsonl_rows(path: Path, stats: InputStats | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in text_lines(path, stats):
        yield lineno, json_object(line, path, lineno)


def require_field(row: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    if key not in row:
        raise LoaderError(f"{path}:{lineno}: missing column {key!r}")
    return row[key]


def passage_text(row: dict[str, Any], path: Path, lineno: int) -> str:
    text = str(require_field(row, "text", path, lineno) or "")
    title = str(row.get("title") or "").strip()
    # Cranfield-style corpora repeat the title as the text's first sentence: don't double it.
    return text if not title or text.startswith(title) else f"{title}. {text}"


def iter_beir_corpus(folder: Path, stats: InputStats | None = None,
                     wanted: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Stream (id, passage) from corpus.jsonl; only `wanted` ids when given; empties and duplicates skipped."""
    path = folder / "corpus.jsonl"
    seen: set[str] = set()
    for lineno, row in jsonl_rows(path, stats):
        pid = str(require_field(row, "_id", path, lineno))
        if wanted is not None and pid not in wanted:
            continue
        text = passage_text(row, path, lineno)
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


def read_qrels_split(path: Path) -> list[tuple[str, str]]:
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
    judgements = read_qrels_split(qrels_path)
    queries: dict[str, str] = {}
    for n, r in jsonl_rows(folder / "queries.jsonl", stats):
        qid = str(require_field(r, "_id", folder / "queries.jsonl", n))
        queries.setdefault(qid, str(require_field(r, "text", folder / "queries.jsonl", n)))
    corpus = dict(iter_beir_corpus(folder, stats, wanted={pid for _, pid in judgements}))
    out = empty_batch(PAIR_COLUMNS)
    for qid, pid in judgements:
        if qid not in queries or pid not in corpus:
            stats.skip("qrels_missing_id")
            continue
        for col, val in zip(PAIR_COLUMNS, (qid, queries[qid], pid, corpus[pid])):
            out[col].append(val)
    return out
