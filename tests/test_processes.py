"""The test helper that reruns a run Ray aborted: it reruns only on Ray's abort, and at most `tries` runs."""

from __future__ import annotations

import sys

from processes import RAY_ABORT, run_resuming_ray_aborts


def _command(counter, fail_runs: int, message: str) -> list[str]:
    # Each run appends a line to `counter`; the first `fail_runs` runs fail with `message` on stderr.
    code = (f"import sys; p = {str(counter)!r}; n = len(open(p).read().splitlines()) if __import__('os')"
            f".path.exists(p) else 0; open(p, 'a').write('x\\n');"
            f" sys.exit(0) if n >= {fail_runs} else (sys.stderr.write({message!r}), sys.exit(1))")
    return [sys.executable, "-c", code]


def test_a_ray_abort_is_rerun_and_counted_before_each_rerun(tmp_path):
    counter, seen = tmp_path / "runs", []
    done = run_resuming_ray_aborts(_command(counter, 2, f"C task_manager.cc: {RAY_ABORT}."),
                                   lambda: seen.append(counter.read_text().count("x")), timeout=60)
    assert done.returncode == 0 and seen == [1, 2] and counter.read_text().count("x") == 3


def test_other_failures_and_endless_aborts_are_returned(tmp_path):
    other = run_resuming_ray_aborts(_command(tmp_path / "a", 5, "ValueError: bad config"), timeout=60)
    assert other.returncode == 1 and "bad config" in other.stderr and (tmp_path / "a").read_text().count("x") == 1
    endless = run_resuming_ray_aborts(_command(tmp_path / "b", 5, RAY_ABORT), tries=3, timeout=60)
    assert endless.returncode == 1 and RAY_ABORT in endless.stderr and (tmp_path / "b").read_text().count("x") == 3
