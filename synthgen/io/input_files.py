"""Data files as users hand them over: gzip-compressed JSONL, a UTF-8 BOM, Windows line ends, empty files,
and files `datasets` cannot parse. Every failure becomes one LoaderError naming the file and the line.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

from synthgen.core.errors import LoaderError

BOM = "\ufeff"
# `datasets` builder per file type; compressed JSON is read by the same builder.
DATA_KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv",
              ".jsonl.gz": "json", ".json.gz": "json", ".csv.gz": "csv"}


@dataclass
class InputStats:
    """Skips and truncations while reading, by kind: reported in run.json["input"]["skipped"]."""

    skipped: Counter = field(default_factory=Counter)
    truncated: int = 0

    def skip(self, kind: str, n: int = 1) -> None:
        self.skipped[kind] += n

    def as_dict(self) -> dict[str, Any]:
        return {"skipped": dict(self.skipped), "truncated": self.truncated}


def suffix_of(path: Path) -> str:
    """'.jsonl.gz' for a compressed file, else the plain suffix."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    return "".join(suffixes) if suffixes[-1:] == [".gz"] else path.suffix.lower()


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")


def raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of a possibly gzip-compressed file; an empty file or a corrupt archive is one error."""
    if path.stat().st_size == 0:
        raise LoaderError(f"{path}: empty file (0 bytes)")
    try:
        with open_binary(path) as fh:
            yield from enumerate(fh, 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise LoaderError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from None


def decode_line(raw: bytes, lineno: int) -> str:
    """UTF-8 text of a line; a BOM at the start of the file is dropped (Windows editors write one)."""
    line = raw.decode("utf-8")
    return line.lstrip(BOM) if lineno == 1 else line


def first_bad_json_line(path: Path) -> str | None:
    """'path:N: what is wrong' for the first line of a JSONL file that is not a JSON object, or None."""
    for lineno, raw in raw_lines(path):
        try:
            line = decode_line(raw, lineno)
        except UnicodeDecodeError:
            return f"{path}:{lineno}: invalid UTF-8"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"{path}:{lineno}: invalid JSON ({exc.msg}; a truncated line?)"
        if not isinstance(row, dict):
            return f"{path}:{lineno}: expected a JSON object"
    return None


def load_data_file(path: Path):
    """A .jsonl/.json/.parquet/.csv file (optionally .gz) as a `datasets.Dataset`, or one LoaderError."""
    from datasets import load_dataset

    kind = DATA_KINDS.get(suffix_of(path))
    if kind is None:
        raise LoaderError(f"{path}: unsupported file type {suffix_of(path)!r} "
                          f"(use {', '.join(DATA_KINDS)} or a dataset folder)")
    if path.stat().st_size == 0:
        raise LoaderError(f"{path}: empty file (0 bytes)")
    if kind == "json" and suffix_of(path) in (".jsonl", ".jsonl.gz"):
        # `datasets` reports a bad line as a builder error without the line; find it first.
        bad = first_bad_json_line(path)
        if bad:
            raise LoaderError(bad)
    try:
        ds = load_dataset(kind, data_files=str(path), split="train")
    except Exception as exc:  # noqa: BLE001 - any parser failure is one line naming the file
        cause = exc.__cause__ or exc
        raise LoaderError(f"{path}: cannot read as {kind}: {type(cause).__name__}: "
                          f"{str(cause).splitlines()[0][:200] if str(cause) else ''}") from None
    bom = [c for c in ds.column_names if c.startswith(BOM)]
    for c in bom:  # a CSV saved with a BOM names its first column '\ufeffquery'
        ds = ds.rename_column(c, c.lstrip(BOM))
    return ds
