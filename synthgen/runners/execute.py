"""Run a command's steps with the configured runner: `local` (this process) or `ray` (Ray Data workers)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable

from synthgen.core.config import Config, ConfigError
from synthgen.core.errors import LoaderError
from synthgen.core.schema import Batch
from synthgen.core.step import Step, StepStats, add_counters
from synthgen.runners.local import Pipeline

log = logging.getLogger(__name__)

Worker = tuple[Callable[..., list[Step]], tuple]


def read_pairs(cfg: Config):
    """(pairs, skip counts) of the configured input: read by synthgen's readers (local), or by ray.data readers
    normalised the same way (ray: runners/ray_read)."""
    if cfg.runner == "ray":
        from synthgen.runners.ray_read import read_pairs_on_ray
        from synthgen.runners.ray_runner import init_ray

        init_ray(cfg.ray)
        try:
            return read_pairs_on_ray(cfg.input)
        except LoaderError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a line that is not JSON or UTF-8 stops pyarrow's reader
            # One bad line must not kill the job: synthgen's own reader skips and counts it (same pairs).
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]
            log.warning("ray.data could not read %s (%s): reading it with synthgen's reader instead",
                        cfg.input.path, why)
    from synthgen.io.read import load_input_with_stats

    return load_input_with_stats(cfg.input)


def run_pipeline(cfg: Config, steps: list[Step], rows: Batch, desc: str, stack: contextlib.ExitStack,
                 folder: Path, worker: Worker | None = None, batch_queries: int | None = None, sink=None
                 ) -> tuple[list[Batch], list[tuple[str, Batch]], dict[str, StepStats], dict[str, Any]]:
    """(kept batches, [(step, rejected rows)], per-step stats, runner info for the report), the same for both
    runners.

    local: with a `sink` (io.row_sink.RowSink) rows stream to disk per batch. ray: `worker` = (factory, args) builds each worker's copy of `steps`; the workers' counters (requests,
    tokens, scored pairs) are added to `steps` here, so the report reads them as after a local run.
    """
    batch_queries = batch_queries or cfg.batch_queries
    if cfg.runner == "ray":
        if worker is None:
            raise ConfigError(f"runner: ray does not run `{desc}` yet; use runner: local")
        from synthgen.runners.ray_runner import run_on_ray, shard_folder

        factory, args = worker
        cut = next((i for i, s in enumerate(steps) if s.name == "collision"), None)
        collision = None if cut is None else (cut, steps[cut].positives, steps[cut].threshold)
        result = run_on_ray(rows, batch_queries, factory, args, shard_folder(folder, batch_queries), cfg.ray,
                            collision)
        for i, values in result.counters.items():
            add_counters(steps[i], values)
        info = {"name": "ray", "batches": result.batches_run + result.batches_reused,
                "batches_reused": result.batches_reused, "workers": cfg.ray.concurrency}
        return result.kept, result.rejects, result.stats, info
    pipeline = stack.enter_context(Pipeline(steps))
    kept, rejects = pipeline.run_all(rows, batch_queries, desc=desc, sink=sink)
    return kept, rejects, pipeline.stats, {"name": "local", "batches": len(kept)}
