"""Trainer formats: a run's rows as the tables and records sentence-transformers, FlagEmbedding and Tevatron read."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthgen.core.errors import LoaderError
from synthgen.core.schema import Batch

log = logging.getLogger(__name__)


FORMATS = ("triplet", "n-tuple", "labeled-pair", "margin-mse", "flagembedding", "tevatron", "tevatron-v2", "hub")
DATASET_FORMATS = ("triplet", "n-tuple", "labeled-pair", "margin-mse")
# labeled-pair label families: the column name is what sentence-transformers' losses look for.
LABELS = {"score": "float teacher score (CoSENTLoss, AnglELoss, distillation)",
          "binary": "1 for a positive, 0 for a negative (ContrastiveLoss, OnlineContrastiveLoss)"}


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


RUN_REPORTS = ("run.json", "stats.json")  # generate and mine write the first, validate the second


def run_folder(path: str | Path) -> Path:
    """The run a path names: itself, or the run that holds it when it is a dataset folder inside one (RUN/triplets,
    RUN/kept)."""
    def is_run(f: Path) -> bool:
        return any((f / name).is_file() for name in RUN_REPORTS)

    folder = Path(path).resolve()
    return folder.parent if not is_run(folder) and is_run(folder.parent) else folder


# Rejects of these stages are about the pair itself (a synthetic query that failed its checks), not a candidate.
PAIR_STAGES = ("queries",)


def rejected_only_pairs(run: str | Path, rows: Batch) -> Batch:
    """The (query, positive) pairs of a run's rejects/ that kept no row in `rows` (every candidate dropped, or none
    made: `not_applicable`), one row each with an empty negative, in first-seen order: a trainer fills them as
    it fills any missing column. Rejects of PAIR_STAGES are left out; no rejects/ folder gives none."""
    from datasets import load_from_disk

    folder = run_folder(run) / "rejects"
    if not (folder / "state.json").is_file():
        return {c: [] for c in rows}
    rej = load_from_disk(str(folder))
    need = ["anchor", "positive", "query_id", "positive_id", "stage"]
    if not set(need) <= set(rej.column_names):
        log.warning("%s: not a synthgen rejects table (no %s): its pairs are not trained on", folder,
                    ", ".join(sorted(set(need) - set(rej.column_names))))
        return {c: [] for c in rows}
    rej = rej.select_columns(need)
    kept = set(zip(rows["query_id"], rows["positive_id"]))
    out: Batch = {c: [] for c in rows}
    for a, p, q, pid, stage in zip(rej["anchor"], rej["positive"], rej["query_id"], rej["positive_id"], rej["stage"]):
        key = (q or _sid(a), pid or _sid(p))
        if stage in PAIR_STAGES or not a or not p or key in kept:
            continue
        kept.add(key)
        for c in out:
            out[c].append({"anchor": a, "positive": p, "query_id": key[0], "positive_id": key[1],
                           "negative": ""}.get(c))
    return out


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


def to_labeled_pair(rows: Batch, labels: str = "score") -> tuple[pa.Table, dict[str, Any]]:
    """Every (query, positive) once and every negative once, labelled for one loss family (see LABELS).

    `score`: the validation scorer's score (rows it never scored are left out and counted);
    `binary`: 1 for positives, 0 for negatives (every row).
    """
    if labels not in LABELS:
        raise LoaderError(f"unknown label family {labels!r} (choose from: {', '.join(LABELS)})")
    anchors: list[str] = []
    passages: list[str] = []
    values: list[float | int] = []
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
            if labels == "binary":
                value: float | int = int(kind == "pos")
            elif rows[score_col][i] is None:
                unscored += 1
                continue
            else:
                value = float(rows[score_col][i])
            anchors.append(rows["anchor"][i])
            passages.append(rows[text_col][i])
            values.append(value)
    if not values:
        raise LoaderError("labeled-pair --labels score needs positive_score/negative_score: the run has no "
                          "scored rows (use --labels binary)")
    if unscored:
        log.warning("labeled-pair: %d unscored passages left out (use --labels binary to keep them)", unscored)
    column, dtype = ("label", pa.int64()) if labels == "binary" else ("score", pa.float64())
    table = pa.table({"anchor": pa.array(anchors, pa.string()), "passage": pa.array(passages, pa.string()),
                      column: pa.array(values, dtype)})
    return table, {"labels": labels, "unscored_left_out": unscored}


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
    """FlagEmbedding's `{query, pos, neg}` lines; with `scores`, teacher scores that are never null."""
    out = []
    missing = 0
    for g in _per_query(rows):
        rec: dict[str, Any] = {"query": g["query"], "pos": list(g["pos"]), "neg": list(g["neg"])}
        if scores:
            rec["pos_scores"] = [v["score"] for v in g["pos"].values()]
            rec["neg_scores"] = [v["score"] for v in g["neg"].values()]
            missing += sum(s is None for s in rec["pos_scores"] + rec["neg_scores"])
        out.append(rec)
    if missing:
        # FlagEmbedding's distillation rejects non-numeric scores; a made-up default would teach wrong targets.
        raise LoaderError(f"flagembedding --scores: {missing} passages have no score (they never reached the "
                          "scorer); rescore with `synthgen validate` or export without --scores")
    return out


def to_tevatron(rows: Batch) -> list[dict[str, Any]]:
    # synthgen passages already carry their title (BEIR title + text are joined on read): title stays empty.
    return [{"query_id": g["query_id"], "query": g["query"],
             "positive_passages": [{"docid": v["id"], "title": "", "text": t} for t, v in g["pos"].items()],
             "negative_passages": [{"docid": v["id"], "title": "", "text": t} for t, v in g["neg"].items()]}
            for g in _per_query(rows)]


def to_tevatron_v2(rows: Batch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tevatron v2's id-based layout: (train records, corpus records); every referenced docid is in the corpus."""
    train: list[dict[str, Any]] = []
    corpus: dict[str, str] = {}
    differing = 0
    for g in _per_query(rows):
        for text, v in list(g["pos"].items()) + list(g["neg"].items()):
            differing += corpus.setdefault(v["id"], text) != text
        train.append({"query_id": g["query_id"], "query_text": g["query"],
                      "positive_document_ids": [v["id"] for v in g["pos"].values()],
                      "negative_document_ids": [v["id"] for v in g["neg"].values()]})
    if differing:  # e.g. a positive truncated by input.max_passage_chars, mined whole for another query
        log.warning("tevatron-v2: %d passages share a docid with a different text; the first text is kept", differing)
    return train, [{"docid": d, "text": t} for d, t in corpus.items()]


def write_jsonl(records: list[dict[str, Any]], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, dest)
