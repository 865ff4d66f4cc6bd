"""Hide a seeded share of each query's positives; the visible part becomes an ordinary BEIR input folder.

The pipeline under audit reads that folder like any user input (it never sees the hidden ids), and mines
from the whole corpus, so a kept negative that is a hidden positive is a false negative it let through.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from synthgen.core.errors import LoaderError
from synthgen.io.beir import iter_beir_corpus, read_qrels_split


@dataclass
class AuditSplit:
    queries: dict[str, str]  # query id -> text, the audited queries only
    visible: dict[str, list[str]]  # query id -> positive ids the pipeline sees
    hidden: dict[str, set[str]]  # query id -> positive ids it does not see

    def as_dict(self) -> dict[str, int]:
        return {"queries": len(self.queries), "visible_pairs": sum(map(len, self.visible.values())),
                "hidden_positives": sum(map(len, self.hidden.values()))}


def make_split(folder: Path, split: str, min_positives: int, hide: float, max_queries: int | None,
               seed: int) -> AuditSplit:
    """Queries with >= min_positives positives in qrels/<split>.tsv (seeded sample of max_queries), each
    with round(hide * n) positives hidden (at least one hidden and one visible)."""
    if not 0 < hide < 1:
        raise LoaderError(f"--hide must be between 0 and 1 (got {hide})")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise LoaderError(f"missing file: {qrels_path} (the audit needs judged queries)")
    corpus_ids = {pid for pid, _ in iter_beir_corpus(folder)}
    positives: dict[str, list[str]] = {}
    for qid, pid in read_qrels_split(qrels_path):
        if pid in corpus_ids and pid not in positives.setdefault(qid, []):
            positives[qid].append(pid)
    texts: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                texts[str(row["_id"])] = str(row.get("text") or "")
    eligible = sorted(q for q, pids in positives.items()
                      if len(pids) >= max(min_positives, 2) and texts.get(q, "").strip())
    if not eligible:
        raise LoaderError(f"{qrels_path}: no query has {min_positives} or more positives")
    rng = random.Random(seed)
    rng.shuffle(eligible)
    chosen = sorted(eligible[:max_queries] if max_queries else eligible)
    visible: dict[str, list[str]] = {}
    hidden: dict[str, set[str]] = {}
    for qid in chosen:
        pids = sorted(positives[qid])
        random.Random(f"{seed}:{qid}").shuffle(pids)
        n_hide = min(max(round(hide * len(pids)), 1), len(pids) - 1)
        hidden[qid] = set(pids[:n_hide])
        visible[qid] = sorted(pids[n_hide:])
    return AuditSplit({q: texts[q] for q in chosen}, visible, hidden)


def write_visible_input(folder: Path, split: AuditSplit, dest: Path) -> Path:
    """dest/{corpus.jsonl (a link to the original), queries.jsonl, qrels/train.tsv (visible pairs only)}."""
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    link = dest / "corpus.jsonl"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink((folder / "corpus.jsonl").resolve(), link)
    with (dest / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in split.queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (dest / "qrels" / "train.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, pids in split.visible.items():
            for pid in pids:
                fh.write(f"{qid}\t{pid}\t1\n")
    return dest
