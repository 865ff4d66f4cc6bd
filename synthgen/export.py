"""`synthgen export RUN --format F --output DIR`: trainer formats from one canonical run folder.

The source is the run's `triplets/` (`generate`, `mine`) or `kept/` (`validate`) dataset, or that dataset
folder itself. Formats:

| format | written as | rows |
|---|---|---|
| `triplet` | datasets folder (load_from_disk) | `anchor, positive, negative`: one per kept negative |
| `n-tuple` | datasets folder | `anchor, positive, negative_1..negative_k`: one per (query, positive) with >= k negatives, the k hardest |
| `labeled-pair` | datasets folder | `anchor, passage, score`: each (query, positive) and each negative once, `score` = the scorer's (teacher) score |
| `flagembedding` | `DIR/train.jsonl` | `{query, pos: [..], neg: [..]}` per query (+ `pos_scores`, `neg_scores` with --scores) |
| `tevatron` | `DIR/train.jsonl` | `{query_id, query, positive_passages: [{docid, title, text}], negative_passages: [..]}` per query |

sentence-transformers takes every non-label column as an input, so the dataset formats hold exactly
these columns; provenance stays in the run folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthgen.read import LoaderError
from synthgen.schema import Batch

log = logging.getLogger(__name__)

FORMATS = ("triplet", "n-tuple", "labeled-pair", "flagembedding", "tevatron")
DATASET_FORMATS = ("triplet", "n-tuple", "labeled-pair")


def source_dataset(run: str | Path) -> Path:
    """`RUN/triplets`, `RUN/kept`, or RUN itself when it is a `save_to_disk` folder."""
    p = Path(run)
    for sub in ("triplets", "kept"):
        if (p / sub / "state.json").is_file():
            return p / sub
    if (p / "state.json").is_file():
        return p
    if not p.exists():
        raise LoaderError(f"run folder not found: {p}")
    raise LoaderError(f"{p}: no triplets/ or kept/ dataset inside (is it a synthgen run folder?)")


def load_rows(run: str | Path) -> Batch:
    from datasets import load_from_disk

    path = source_dataset(run)
    ds = load_from_disk(str(path))
    missing = [c for c in ("anchor", "positive", "negative") if c not in ds.column_names]
    if missing:
        raise LoaderError(f"{path}: missing column {missing[0]!r} (have: {', '.join(ds.column_names)})")
    rows = ds.to_dict()
    n = len(rows["anchor"])
    for col in ("query_id", "positive_id", "negative_id", "positive_score", "negative_score"):
        rows.setdefault(col, [None] * n)
    # Group keys must exist: fall back to the texts' hashes.
    rows["query_id"] = [q or _sid(a) for q, a in zip(rows["query_id"], rows["anchor"])]
    rows["positive_id"] = [p or _sid(t) for p, t in zip(rows["positive_id"], rows["positive"])]
    return rows


def _sid(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _groups(keys: list[Any]) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return out


def _hardest_first(rows: Batch, idx: list[int]) -> list[int]:
    s = rows["negative_score"]
    return sorted(idx, key=lambda i: -(s[i] if s[i] is not None else float("-inf")))


def to_triplet(rows: Batch) -> pa.Table:
    return pa.table({c: pa.array(rows[c], pa.string()) for c in ("anchor", "positive", "negative")})


def to_n_tuple(rows: Batch, k: int | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """One row per (query, positive) with its k hardest negatives; k defaults to the most common count."""
    groups = _groups(list(zip(rows["query_id"], rows["positive_id"])))
    sizes = Counter(len(g) for g in groups.values())
    if k is None:
        k = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0] if sizes else 1
    cols: dict[str, list[str]] = {"anchor": [], "positive": []} | {f"negative_{j + 1}": [] for j in range(k)}
    dropped = 0
    for idx in groups.values():
        if len(idx) < k:
            dropped += 1
            continue
        chosen = _hardest_first(rows, idx)[:k]
        cols["anchor"].append(rows["anchor"][idx[0]])
        cols["positive"].append(rows["positive"][idx[0]])
        for j, i in enumerate(chosen):
            cols[f"negative_{j + 1}"].append(rows["negative"][i])
    if dropped:
        log.warning("n-tuple: %d (query, positive) groups have fewer than %d negatives and were left out", dropped, k)
    table = pa.table({c: pa.array(v, pa.string()) for c, v in cols.items()})
    return table, {"num_negatives": k, "groups": len(groups), "groups_dropped": dropped}


def to_labeled_pair(rows: Batch) -> tuple[pa.Table, dict[str, Any]]:
    """(anchor, passage, score): every (query, positive) once with its score, every negative with its own."""
    anchors: list[str] = []
    passages: list[str] = []
    scores: list[float] = []
    seen: set[tuple[str, str]] = set()
    unscored = 0
    n = len(rows["anchor"])
    for i in range(n):
        for kind, text_col, score_col, id_val in (
                ("pos", "positive", "positive_score", rows["positive_id"][i]),
                ("neg", "negative", "negative_score", rows["negative_id"][i] or rows["negative"][i])):
            key = (rows["query_id"][i], f"{kind}:{id_val}")
            if key in seen:
                continue
            seen.add(key)
            score = rows[score_col][i]
            if score is None:
                unscored += 1
                continue
            anchors.append(rows["anchor"][i])
            passages.append(rows[text_col][i])
            scores.append(float(score))
    if not scores:
        raise LoaderError("labeled-pair needs positive_score/negative_score: the run has no scored rows")
    table = pa.table({"anchor": pa.array(anchors, pa.string()), "passage": pa.array(passages, pa.string()),
                      "score": pa.array(scores, pa.float64())})
    return table, {"unscored_left_out": unscored}


def _per_query(rows: Batch) -> list[dict[str, Any]]:
    """Per query: distinct positives and negatives (in order), with ids and scores."""
    out = []
    for qid, idx in _groups(rows["query_id"]).items():
        pos: dict[str, dict[str, Any]] = {}
        neg: dict[str, dict[str, Any]] = {}
        for i in idx:
            pos.setdefault(rows["positive"][i], {"id": rows["positive_id"][i], "score": rows["positive_score"][i]})
        for i in _hardest_first(rows, idx):
            neg.setdefault(rows["negative"][i], {"id": rows["negative_id"][i] or f"synthetic-{_sid(rows['negative'][i])}",
                                                 "score": rows["negative_score"][i]})
        out.append({"query_id": qid, "query": rows["anchor"][idx[0]], "pos": pos, "neg": neg})
    return out


def to_flagembedding(rows: Batch, scores: bool = False) -> list[dict[str, Any]]:
    out = []
    for g in _per_query(rows):
        rec: dict[str, Any] = {"query": g["query"], "pos": list(g["pos"]), "neg": list(g["neg"])}
        if scores:
            rec["pos_scores"] = [v["score"] for v in g["pos"].values()]
            rec["neg_scores"] = [v["score"] for v in g["neg"].values()]
        out.append(rec)
    return out


def to_tevatron(rows: Batch) -> list[dict[str, Any]]:
    # synthgen passages already carry their title (BEIR title + text are joined on read): title stays empty.
    return [{"query_id": g["query_id"], "query": g["query"],
             "positive_passages": [{"docid": v["id"], "title": "", "text": t} for t, v in g["pos"].items()],
             "negative_passages": [{"docid": v["id"], "title": "", "text": t} for t, v in g["neg"].items()]}
            for g in _per_query(rows)]


def _write_jsonl(records: list[dict[str, Any]], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, dest)


def export(run: str | Path, fmt: str, output: str | Path, num_negatives: int | None = None,
           scores: bool = False) -> dict[str, Any]:
    """Write `fmt` from the run into `output`; returns {format, source, path, rows, ...}."""
    from synthgen.write import save_dataset

    if fmt not in FORMATS:
        raise LoaderError(f"unknown export format {fmt!r} (choose from: {', '.join(FORMATS)})")
    rows = load_rows(run)
    if not rows["anchor"]:
        raise LoaderError(f"{source_dataset(run)}: no rows to export")
    out = Path(output)
    info: dict[str, Any] = {"format": fmt, "source": str(source_dataset(run)), "input_rows": len(rows["anchor"])}
    if fmt in DATASET_FORMATS:
        extra: dict[str, Any] = {}
        if fmt == "triplet":
            table = to_triplet(rows)
        elif fmt == "n-tuple":
            table, extra = to_n_tuple(rows, num_negatives)
        else:
            table, extra = to_labeled_pair(rows)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "state.json").is_file())):
            # save_dataset replaces the folder: never do that to something that is not a dataset.
            raise LoaderError(f"{out}: exists and is not a dataset folder; choose an empty or new --output")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(table, out)
        info.update(path=str(out), rows=table.num_rows, columns=table.column_names, **extra)
    else:
        records = to_flagembedding(rows, scores) if fmt == "flagembedding" else to_tevatron(rows)
        dest = out / "train.jsonl"
        _write_jsonl(records, dest)
        info.update(path=str(dest), rows=len(records))
    return info
