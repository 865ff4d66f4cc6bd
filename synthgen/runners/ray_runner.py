"""`runner: ray`: the same query batches as the local runner, run by Ray Data workers.

The rows are cut into the local runner's query batches (`_batch`) and numbered (`_seq`); Ray Data groups them
by batch (`groupby("_batch").map_groups`) and hands each group to a worker actor. A worker builds its steps once
(models, clients, indexes opened in its constructor, through a picklable `factory`) and runs the batch through
`Pipeline.run_batch`, the local runner's own loop. So every step sees exactly the rows, in the order, it sees
locally, and both runners produce the same kept and rejected rows.

Each finished batch is written at once as parquet shards (`shards/batch-N.kept.parquet`, `.rejects.parquet`, and
`.json` with the per-step counts, written last: it marks the batch complete). A rerun after a crash skips the
complete batches; LLM answers and scores of the others come from the shared cache. The driver then assembles the
shards into the same run folder as the local runner.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from synthgen.core.config import RayConfig
from synthgen.core.schema import Batch, batch_len, concat_batches
from synthgen.core.step import Step, StepStats, read_counters
from synthgen.runners.ray_collision import COLLISION, JoinedCollisions

log = logging.getLogger(__name__)

BATCH, SEQ = "_batch", "_seq"
INSTALL_HINT = "runner: ray needs Ray Data: pip install 'synthgen[ray]' (ray[data], aiohttp)"


def batch_numbers(query_ids: list[str], batch_queries: int) -> list[int]:
    """The local runner's query batches: queries in order of first appearance, `batch_queries` per batch."""
    order: dict[str, int] = {}
    for qid in query_ids:
        order.setdefault(qid, len(order))
    return [order[q] // batch_queries for q in query_ids]


def shard_paths(shard_dir: Path, b: int) -> dict[str, Path]:
    stem = shard_dir / f"batch-{b:06d}"
    return {"kept": stem.with_suffix(".kept.parquet"), "rejects": stem.with_suffix(".rejects.parquet"),
            "stats": stem.with_suffix(".json"), "part": stem.with_suffix(".a.json"),
            "part_rejects": stem.with_suffix(".a.rejects.parquet")}


def shard_folder(run_folder: Path, batch_queries: int) -> Path:
    """Shards are batches: keyed by the batch size, which the run identity leaves out."""
    return run_folder / "shards" / f"bq{batch_queries}"


def pending(rows: Batch, batch_queries: int, shard_dir: Path) -> tuple[list[int], list[int], set[int]]:
    """(each row's batch number, the rows of batches not complete yet, the complete batches)."""
    numbers = batch_numbers(rows["query_id"], batch_queries)
    done = {b for b in set(numbers) if shard_paths(shard_dir, b)["stats"].is_file()}
    return numbers, [i for i, b in enumerate(numbers) if b not in done], done


def _write_table(rows: Batch, dest: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = dest.with_name(f".{dest.name}.tmp")
    pq.write_table(pa.Table.from_pydict(rows), tmp)
    os.replace(tmp, dest)


def _read_table(path: Path) -> Batch:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pydict()


class BatchWorker:
    """A Ray actor: builds the steps once (`factory(*args)`), then runs one query batch per call and writes it.

    With `cut` (the collision step's index) the steps run in two phases: "before" runs steps[:cut], writes that
    part's rejects and counts (`batch-N.a.*`) and returns the surviving rows, which the driver joins with the
    positives (runners/ray_collision); "after" runs JoinedCollisions and steps[cut+1:] on them and writes the
    batch. A batch with no survivors is finished in "before"."""

    def __init__(self, factory: Callable[..., list[Step]], args: tuple, shard_dir: str, cut: int | None = None,
                 phase: str = "all"):
        import contextlib

        from synthgen.runners.local import Pipeline

        self.stack = contextlib.ExitStack()
        self.steps = factory(self.stack, *args)
        self.phase, self.shard_dir = phase, Path(shard_dir)
        head = self.steps if cut is None else self.steps[:cut]
        self.before = self.stack.enter_context(Pipeline(head))
        self.after = None if cut is None else self.stack.enter_context(
            Pipeline([JoinedCollisions(), *self.steps[cut + 1:]]))
        self.last_counters: dict[int, dict[str, float]] = {}

    def _run(self, pipeline, rows: Batch) -> tuple[Batch, list[tuple[str, Batch]], dict[str, Any]]:
        if not pipeline.checked:
            pipeline.check(rows)
        pipeline.stats = {s.name: StepStats() for s in pipeline.steps}  # this batch's counts only
        kept, rejects = pipeline.run_batch(rows)
        return kept, rejects, {k: _stats_dict(v) for k, v in pipeline.stats.items()}

    def _counters(self) -> dict[str, dict[str, float]]:
        counters = {}
        for i, s in enumerate(self.steps):  # this call's share: the difference to the last call's totals
            now = read_counters(s)
            last = self.last_counters.get(i, {})
            counters[str(i)] = {k: v - last.get(k, 0) for k, v in now.items() if v != last.get(k, 0)}
            self.last_counters[i] = now
        return counters

    def __call__(self, group):
        rows = group.sort_by(SEQ).to_pydict()
        b = rows.pop(BATCH)[0]
        rows.pop(SEQ)
        paths = shard_paths(self.shard_dir, b)
        if self.phase == "after":
            first = json.loads(paths["part"].read_text(encoding="utf-8"))
            stages, counters = first["stages"], first["counters"]
            rejects = [(st, {c: v for c, v in r.items() if c != "stage"}) for st, r in
                       _by_stage(_read_table(paths["part_rejects"]))]
            kept = {c: rows[c] for c in (*first["columns"], COLLISION)}  # the join reorders the columns
        else:
            kept, rejects, stages = self._run(self.before, rows)
            counters = {}
            if self.phase == "before" and batch_len(kept):
                _write_table(_tagged(rejects), paths["part_rejects"])
                _write_json({"stages": stages, "counters": self._counters(), "columns": list(kept)}, paths["part"])
                return {**kept, BATCH: [b] * batch_len(kept), SEQ: list(range(batch_len(kept)))}
        if self.after is not None:
            kept, more, later = self._run(self.after, kept)
            rejects, stages = rejects + more, {**stages, **later}
        for i, c in self._counters().items():
            counters[i] = {k: counters.get(i, {}).get(k, 0) + c.get(k, 0) for k in {*counters.get(i, {}), *c}}
        rejected = _tagged(rejects)
        _write_table(kept, paths["kept"])
        _write_table(rejected, paths["rejects"])
        _write_json({"batch": b, "stages": stages, "counters": counters}, paths["stats"])  # last: complete
        if self.phase == "before":  # no survivors: nothing for the join; same columns as the survivors' rows
            return {}
        return {"batch": [b], "kept": [batch_len(kept)], "rejected": [batch_len(rejected)]}


def _tagged(rejects: list[tuple[str, Batch]]) -> Batch:
    """A batch's rejects in one table with their `stage`; steps reject rows with different columns: the union,
    None where a step had none."""
    tagged = [{**r, "stage": [stage] * batch_len(r)} for stage, r in rejects]
    return concat_batches(tagged, list(dict.fromkeys(c for t in tagged for c in t)))


def _by_stage(rej: Batch) -> list[tuple[str, Batch]]:
    out = []
    for stage in dict.fromkeys(rej.get("stage", [])):
        idx = [i for i, s in enumerate(rej["stage"]) if s == stage]
        out.append((stage, {c: [v[i] for i in idx] for c, v in rej.items() if c != "stage"}))
    return out


def _write_json(value: dict, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, dest)


def _stats_dict(st: StepStats) -> dict[str, Any]:
    return {"rows_in": st.rows_in, "rows_out": st.rows_out, "rejected": dict(st.rejected), "seconds": st.seconds}


@dataclass
class RayResult:
    kept: list[Batch]
    rejects: list[tuple[str, Batch]]
    stats: dict[str, StepStats]
    counters: dict[int, dict[str, float]] = field(default_factory=dict)  # step index -> summed counters
    batches_run: int = 0
    batches_reused: int = 0


def init_ray(rcfg: RayConfig) -> None:
    try:
        import ray
    except ImportError:
        from synthgen.core.config import ConfigError

        raise ConfigError(INSTALL_HINT) from None
    if ray.is_initialized():
        return
    address = rcfg.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False}
    if address is None and rcfg.num_cpus:
        kwargs["num_cpus"] = rcfg.num_cpus
    ray.init(address=address, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False


def run_on_ray(rows: Batch, batch_queries: int, factory: Callable[..., list[Step]], args: tuple, shard_dir: Path,
               rcfg: RayConfig, collision: tuple[int, list[str], float] | None = None) -> RayResult:
    """Every query batch of `rows` through the factory's steps on Ray workers; complete batches are reused.
    `collision`: (index of the collision step, the normalised positives, its threshold): checked as a join."""
    import pyarrow as pa
    import ray

    init_ray(rcfg)
    shard_dir.mkdir(parents=True, exist_ok=True)
    numbers, todo, done = pending(rows, batch_queries, shard_dir)
    total = max(numbers, default=-1) + 1
    log.info("ray: %d query batches (%d complete from an earlier run) on %d worker(s)", total, len(done),
             rcfg.concurrency)
    if todo:
        table = pa.Table.from_pydict({**{c: [v[i] for i in todo] for c, v in rows.items()},
                                      BATCH: [numbers[i] for i in todo], SEQ: todo})
        batches = len({numbers[i] for i in todo})
        parts = min(batches, 64)
        run = dict(batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=rcfg.concurrency),
                   num_gpus=rcfg.num_gpus or None)
        grouped = ray.data.from_arrow(table).groupby(BATCH, num_partitions=parts)
        if collision is None:
            grouped.map_groups(BatchWorker, fn_constructor_args=(factory, args, str(shard_dir)), **run).materialize()
        else:
            from synthgen.runners.ray_collision import mark_collisions

            cut, positives, threshold = collision
            survivors = grouped.map_groups(BatchWorker, fn_constructor_args=(factory, args, str(shard_dir), cut,
                                                                             "before"), **run).materialize()
            if survivors.count():
                marked = mark_collisions(survivors, positives, threshold, (BATCH, SEQ), parts)
                marked.groupby(BATCH, num_partitions=parts).map_groups(
                    BatchWorker, fn_constructor_args=(factory, args, str(shard_dir), cut, "after"), **run).materialize()
    return collect(shard_dir, total, reused=done)


def collect(shard_dir: Path, total: int, reused: set[int] = frozenset()) -> RayResult:
    """The shards of batches 0..total-1, as the local runner returns them: kept per batch, rejects per step.
    Step counters (requests sent, tokens, pairs scored) count this run's work: not that of `reused` batches."""
    stats: dict[str, StepStats] = {}
    counters: dict[int, dict[str, float]] = {}
    kept: list[Batch] = []
    rejects: list[tuple[str, Batch]] = []
    for b in range(total):
        paths = shard_paths(shard_dir, b)
        info = json.loads(paths["stats"].read_text(encoding="utf-8"))
        for name, st in info["stages"].items():
            agg = stats.setdefault(name, StepStats())
            agg.rows_in += st["rows_in"]
            agg.rows_out += st["rows_out"]
            agg.rejected.update(st["rejected"])
            agg.seconds += st["seconds"]
        for i, c in (info["counters"].items() if b not in reused else ()):
            mine = counters.setdefault(int(i), {})
            for k, v in c.items():
                mine[k] = mine.get(k, 0) + v
        kept.append(_read_table(paths["kept"]))
        rejects.extend(_by_stage(_read_table(paths["rejects"])))
    return RayResult(kept, rejects, stats, counters, batches_run=total - len(reused), batches_reused=len(reused))
