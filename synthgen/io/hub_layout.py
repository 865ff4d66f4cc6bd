"""The Hub layout of a run: one parquet config per training format, the trainer files, and the card.

`write_layout(run, dest)` (also `synthgen export RUN --format hub --output DIR`, and what `synthgen push`
uploads) writes

    DIR/README.md                 the card; its YAML `configs:` lists the configs below
    DIR/<config>/train-00000-of-00001.parquet
    DIR/flagembedding/train.jsonl FlagEmbedding's {query, pos, neg} lines (+ scores when every passage has one)
    DIR/tevatron/train.jsonl      Tevatron v2: {query_id, query_text, positive_document_ids, negative_document_ids}
    DIR/tevatron/corpus.jsonl     Tevatron v2: {docid, text}
    DIR/hist_*.png, run.json      histograms and the run's record

so `datasets.load_dataset(DIR_or_repo, "triplet")` gives exactly the columns sentence-transformers trains on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.core.errors import LoaderError

log = logging.getLogger(__name__)

TRAINER_FILES = ("flagembedding/train.jsonl", "tevatron/train.jsonl", "tevatron/corpus.jsonl")
SHARD = "train-00000-of-00001.parquet"
MARKER = ".synthgen-hub"  # marks a folder this module wrote, so a rewrite may replace it


def run_info(run: str | Path) -> dict[str, Any]:
    """The run's run.json (generate, mine) or stats.json (validate); {} for a bare dataset folder."""
    for name in ("run.json", "stats.json"):
        path = Path(run) / name
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def config_tables(run: str | Path, num_negatives: int | None = None) -> dict[str, pa.Table]:
    """Every config that has rows, as Arrow tables (empty ones are left out with a log line)."""
    from datasets import load_from_disk

    from synthgen.io.formats import load_rows, source_dataset, to_labeled_pair, to_n_tuple, to_triplet
    from synthgen.io.margin_mse import to_margin_mse

    rows = load_rows(run)
    if not rows["anchor"]:
        raise LoaderError(f"{source_dataset(run)}: no rows to publish")
    tables: dict[str, pa.Table] = {"triplet": to_triplet(rows), "n-tuple": to_n_tuple(rows, num_negatives)[0]}
    try:
        tables["pair-score"] = to_labeled_pair(rows, "score")[0]
    except LoaderError as exc:
        log.warning("config pair-score left out: %s", exc)
    tables["pair-label"] = to_labeled_pair(rows, "binary")[0]
    try:
        tables["margin-mse"] = to_margin_mse(rows)[0]
    except LoaderError as exc:
        log.warning("config margin-mse left out: %s", exc)
    tables["full"] = load_from_disk(str(source_dataset(run))).data.table
    rejects = Path(run) / "rejects"
    if (rejects / "state.json").is_file():
        tables["rejects"] = load_from_disk(str(rejects)).data.table
    for name in [n for n, t in tables.items() if t.num_rows == 0 and n != "rejects"]:
        log.warning("config %s left out: no rows", name)
        del tables[name]
    return tables


def _write_trainer_files(run: str | Path, dest: Path) -> dict[str, int]:
    from synthgen.io.formats import load_rows, to_flagembedding, to_tevatron_v2, write_jsonl

    rows = load_rows(run)
    scored = all(s is not None for s in rows["positive_score"] + rows["negative_score"])
    flag = to_flagembedding(rows, scores=scored)
    train, corpus = to_tevatron_v2(rows)
    write_jsonl(flag, dest / "flagembedding" / "train.jsonl")
    write_jsonl(train, dest / "tevatron" / "train.jsonl")
    write_jsonl(corpus, dest / "tevatron" / "corpus.jsonl")
    return {"flagembedding": len(flag), "tevatron": len(train), "tevatron_corpus": len(corpus),
            "flagembedding_scores": scored}


def _check_dest(dest: Path) -> None:
    # The folder is replaced as a whole: never do that to something this module did not write.
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / MARKER).is_file())):
        raise LoaderError(f"{dest}: exists and is not a synthgen hub folder; choose an empty or new --output")


def write_layout(run: str | Path, output: str | Path, num_negatives: int | None = None,
                 repo_id: str | None = None) -> dict[str, Any]:
    """Write the Hub layout of `run` into `output` (built beside it, renamed into place when complete);
    `repo_id` (when pushing) goes into the card's snippets."""
    from synthgen.io.card import render_card

    run, dest = Path(run), Path(output)
    _check_dest(dest)
    tables = config_tables(run, num_negatives)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, table in tables.items():
        (tmp / name).mkdir()
        pq.write_table(table, tmp / name / SHARD)
    trainer_rows = _write_trainer_files(run, tmp)
    for pattern in ("hist_*.png", "run.json", "stats.json"):
        for f in run.glob(pattern):
            shutil.copy2(f, tmp / f.name)
    hub = {name: {"rows": t.num_rows, "columns": t.column_names} for name, t in tables.items()}
    info = run_info(run) | {"hub_configs": hub, "trainer_files": trainer_rows, "repo_id": repo_id}
    (tmp / "README.md").write_text(render_card(run, info), encoding="utf-8")
    (tmp / MARKER).write_text("written by synthgen; `synthgen export --format hub` may replace this folder\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return {"format": "hub", "source": str(run), "path": str(dest), "rows": tables["triplet"].num_rows,
            "configs": hub, "trainer_files": trainer_rows}
