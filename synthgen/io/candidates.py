"""Candidate rows from a file: (query, positive, negative) with optional ids and provenance, for `synthgen validate`
and for `mine.synthetic_from` (an earlier run's negatives)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from synthgen.core.errors import LoaderError
from synthgen.core.schema import CANDIDATE_COLUMNS, OPTIONAL_COLUMNS, Batch
from synthgen.io.read import hf_dataset

REQUIRED = ("query", "positive", "negative")


def _short_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_candidates(path: str | Path) -> Batch:
    """A `save_to_disk` folder, or a .jsonl/.json/.parquet/.csv file, with query (or anchor), positive, negative."""
    p = Path(path)
    if not p.exists():
        raise LoaderError(f"missing file: {p}")
    ds = hf_dataset(str(p), "train")
    if "anchor" in ds.column_names and "query" not in ds.column_names:
        ds = ds.rename_column("anchor", "query")
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if missing:
        raise LoaderError(f"{p}: missing column {missing[0]!r} (have: {', '.join(ds.column_names)})")
    rows = ds.to_dict()
    n = len(rows["query"])
    if n == 0:
        raise LoaderError(f"{p}: no rows")
    for col in ("query", "positive"):  # a null negative is kept: the quality rule rejects it as `empty`
        bad = next((i for i, v in enumerate(rows[col]) if not isinstance(v, str) or not v.strip()), None)
        if bad is not None:
            raise LoaderError(f"{p}: row {bad + 1}: field {col!r} is {'null' if rows[col][bad] is None else 'empty'}")
    out: Batch = {c: rows.get(c, [None] * n) for c in CANDIDATE_COLUMNS + OPTIONAL_COLUMNS}
    # Ids group a query's negatives; derive them from the text when the file has none.
    out["query_id"] = [qid or _short_id(q) for qid, q in zip(out["query_id"], out["query"])]
    out["positive_id"] = [pid or _short_id(p) for pid, p in zip(out["positive_id"], out["positive"])]
    return out
