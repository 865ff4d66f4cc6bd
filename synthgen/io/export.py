"""`synthgen export RUN --format F --output DIR`: trainer formats from one canonical run folder.

The source is the run's `triplets/` (`generate`, `mine`) or `kept/` (`validate`) dataset, or that dataset
folder itself. Formats:

| format | written as | rows |
|---|---|---|
| `triplet` | datasets folder (load_from_disk) | `anchor, positive, negative`: one per kept negative |
| `n-tuple` | datasets folder | `anchor, positive, negative_1..negative_k`: one per (query, positive) with >= k negatives, the k hardest |
| `labeled-pair` | datasets folder | each (query, positive) and each negative once: `anchor, passage, score` (`--labels score`, the scorer's teacher score: CoSENT/AnglE) or `anchor, passage, label` (`--labels binary`, 1/0: ContrastiveLoss) |
| `margin-mse` | datasets folder | `anchor, positive, negative, label` with label = positive_score - negative_score (the validation scorer's margin): MarginMSELoss distillation (see io/margin_mse.py) |
| `flagembedding` | `DIR/train.jsonl` | `{query, pos: [..], neg: [..]}` per query (+ `pos_scores`, `neg_scores` with --scores; never null) |
| `tevatron` | `DIR/train.jsonl` | `{query_id, query, positive_passages: [{docid, title, text}], negative_passages: [..]}` per query (v1 layout, read by v2 too) |
| `tevatron-v2` | `DIR/train.jsonl` + `DIR/corpus.jsonl` | `{query_id, query_text, positive_document_ids, negative_document_ids}` per query; `{docid, text}` per passage |
| `hub` | folder | one parquet config per training format + the card (see synthgen/hub_layout.py) |

sentence-transformers takes every non-label column as an input, so the dataset formats hold exactly
these columns; provenance stays in the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from synthgen.core.errors import LoaderError
from synthgen.io.formats import (DATASET_FORMATS, FORMATS, load_rows, source_dataset, to_flagembedding, to_labeled_pair,
                                 to_n_tuple, to_tevatron, to_tevatron_v2, to_triplet, write_jsonl)
from synthgen.io.margin_mse import to_margin_mse

log = logging.getLogger(__name__)


def export(run: str | Path, fmt: str, output: str | Path, num_negatives: int | None = None,
           scores: bool = False, labels: str = "score") -> dict[str, Any]:
    """Write `fmt` from the run into `output`; returns {format, source, path, rows, ...}."""
    from synthgen.io.write import save_dataset

    if fmt not in FORMATS:
        raise LoaderError(f"unknown export format {fmt!r} (choose from: {', '.join(FORMATS)})")
    if fmt == "hub":
        from synthgen.io.hub_layout import write_layout

        return write_layout(run, output, num_negatives)
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
        elif fmt == "margin-mse":
            table, extra = to_margin_mse(rows)
        else:
            table, extra = to_labeled_pair(rows, labels)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "state.json").is_file())):
            # save_dataset replaces the folder: never do that to something that is not a dataset.
            raise LoaderError(f"{out}: exists and is not a dataset folder; choose an empty or new --output")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(table, out)
        info.update(path=str(out), rows=table.num_rows, columns=table.column_names, **extra)
    elif fmt == "tevatron-v2":
        train, corpus = to_tevatron_v2(rows)
        write_jsonl(corpus, out / "corpus.jsonl")
        write_jsonl(train, out / "train.jsonl")
        info.update(path=str(out / "train.jsonl"), corpus=str(out / "corpus.jsonl"), rows=len(train),
                    corpus_rows=len(corpus))
    else:
        records = to_flagembedding(rows, scores) if fmt == "flagembedding" else to_tevatron(rows)
        dest = out / "train.jsonl"
        write_jsonl(records, dest)
        info.update(path=str(dest), rows=len(records))
    return info
