"""Best-of-n timing: both sides of a figure run `repeats` times, interleaved, in one process on the same inputs."""

from __future__ import annotations

import time
from typing import Any, Callable

REPEATS = 3


def best_of(sides: dict[str, Callable[[], Any]], repeats: int = REPEATS) -> tuple[dict[str, float], dict[str, Any]]:
    """Seconds of each side's fastest run, and each side's last result. Interleaved (a, b, a, b, ...) so that
    drift in the load of a shared machine hits both sides alike; the minimum is the least disturbed run."""
    best = {name: float("inf") for name in sides}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            last[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, last
