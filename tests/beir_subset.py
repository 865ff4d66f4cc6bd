"""Small BEIR folders cut from the shared data, for end-to-end evals that must stay cheap on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path


def read_qrels_rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:] if line.strip()]


def first_queries(src: Path, counts: dict[str, int]) -> dict[str, list[list[str]]]:
    """Per split, the qrels rows of its first `counts[split]` queries that have a positive."""
    splits = {}
    for split, n in counts.items():
        rows = read_qrels_rows(src / "qrels" / f"{split}.tsv")
        qids = list(dict.fromkeys(r[0] for r in rows if float(r[2]) > 0))[:n]
        splits[split] = [r for r in rows if r[0] in qids]
    return splits


def write_beir_subset(src: Path, dest: Path, qrels: dict[str, list[list[str]]], n_other: int) -> Path:
    """`qrels` rows per split, every passage they judge plus the first `n_other` others, and their queries."""
    (dest / "qrels").mkdir(parents=True)
    keep = {r[1] for rows in qrels.values() for r in rows}
    docs = [json.loads(line) for line in (src / "corpus.jsonl").read_text().splitlines() if line.strip()]
    keep |= set([d["_id"] for d in docs if d["_id"] not in keep][:n_other])
    (dest / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep))
    qids = {r[0] for rows in qrels.values() for r in rows}
    (dest / "queries.jsonl").write_text("".join(
        line + "\n" for line in (src / "queries.jsonl").read_text().splitlines()
        if line.strip() and json.loads(line)["_id"] in qids))
    for split, rows in qrels.items():
        (dest / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows))
    return dest


def run_cli(args: list[str]) -> str:
    """`synthgen ARGS` in this process; returns what it printed (exit code 0 asserted)."""
    import contextlib
    import io

    from synthgen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(args)
    assert rc == 0, out.getvalue()[-2000:]
    return out.getvalue()
