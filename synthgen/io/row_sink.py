"""Rows streamed to disk as query batches finish, instead of collected until the end of a run.

Each batch's kept rows and rejects are appended as one parquet part each under `<run>/.parts/` (written to a
temp name and renamed, so a part on disk is always complete: a kill -9 loses at most the batch in flight). When
the run ends the parts are streamed, part by part, into the same `triplets/` (or `kept/`) and `rejects/`
datasets folders `write_run` writes, and `.parts/` is removed. A rerun of a killed run starts the parts again
(the shared cache answers every LLM request and score the killed run finished).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.core.schema import REJECT_SCHEMA, TRIPLET_SCHEMA, Batch
from synthgen.io.write import kept_table, rejects_table, stage_table, write_staged

PARTS = ".parts"
# What the run report still needs of each row once it is on disk: ids, scores, source, rule; not the texts.
TEXT_COLUMNS = ("query", "anchor", "positive", "negative", "details")


def without_texts(batch: Batch) -> Batch:
    return {k: v for k, v in batch.items() if k not in TEXT_COLUMNS}


def write_part(table: pa.Table, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, dest)


class RowSink:
    """Pipeline output on disk, batch by batch; `finish` turns it into the run's datasets folders."""

    def __init__(self, folder: Path):
        self.parts = folder / PARTS
        shutil.rmtree(self.parts, ignore_errors=True)  # parts of a killed run: this run writes them again
        for kind in ("kept", "rejects"):
            (self.parts / kind).mkdir(parents=True)
        self.batches = 0

    def add(self, kept: Batch, rejects: list[tuple[str, Batch]]) -> None:
        name = f"{self.batches:06d}.parquet"
        write_part(kept_table([kept]), self.parts / "kept" / name)
        write_part(rejects_table(rejects), self.parts / "rejects" / name)
        self.batches += 1

    def add_rejects(self, rejects: list[tuple[str, Batch]]) -> None:
        """Rejects found before the pipeline (e.g. queries dropped while reading), first in rejects/."""
        self.add(kept_table([]).to_pydict(), rejects)

    def finish(self, folder: Path, kept_name: str = "triplets") -> tuple[int, int]:
        """Write <kept_name>/ and rejects/ from the parts (same rows, same order as write_run); returns the counts."""
        counts = write_staged(folder, kept_name, lambda dest: self._stage("kept", TRIPLET_SCHEMA, dest),
                              lambda dest: self._stage("rejects", REJECT_SCHEMA, dest))
        shutil.rmtree(self.parts, ignore_errors=True)
        return counts

    def _stage(self, kind: str, schema: pa.Schema, dest: Path) -> tuple[Path, int]:
        # An empty dataset saved by `datasets` gives the folder layout and metadata; its one data file is then
        # replaced by the parts, streamed one at a time (memory: one part, not the whole output).
        tmp, _ = stage_table(schema.empty_table(), dest)
        (data_file,) = tmp.glob("*.arrow")
        with pa.memory_map(str(data_file)) as src:
            file_schema = pa.ipc.open_stream(src).schema  # with the `datasets` features metadata
        rows = 0
        try:
            with pa.OSFile(str(data_file) + ".new", "wb") as sink, pa.ipc.new_stream(sink, file_schema) as writer:
                for part in sorted((self.parts / kind).glob("*.parquet")):
                    table = pq.read_table(part).cast(file_schema)
                    rows += table.num_rows
                    writer.write_table(table)
            os.replace(str(data_file) + ".new", data_file)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp, rows
