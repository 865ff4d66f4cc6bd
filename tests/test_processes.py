"""The test helpers that rerun what Ray aborted: only on Ray's abort (or on SIGABRT, for the `ray_driver` tests run
apart), at most `tries` runs."""

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


def _aborting(counter, abort_runs: int, exit_code: int = 0) -> list[str]:
    # Each run appends a line to `counter`; the first `abort_runs` runs die of SIGABRT, as Ray's driver check does.
    code = (f"import os, sys; p = {str(counter)!r}; n = len(open(p).read().splitlines()) if os.path.exists(p)"
            f" else 0; open(p, 'a').write('x\\n'); os.abort() if n < {abort_runs} else sys.exit({exit_code})")
    return [sys.executable, "-c", code]


def test_make_tests_runner_reruns_a_pytest_that_died_of_sigabrt_only(tmp_path, capfd):
    """`python tests/processes.py CMD` (for the in-process Ray tests run apart): a SIGABRT is rerun, at most
    `tries` runs; a failing exit code is returned at once, so real test failures are never rerun away."""
    from processes import main

    assert main(_aborting(tmp_path / "a", 2)) == 0 and (tmp_path / "a").read_text().count("x") == 3
    assert "run 2 of 3" in capfd.readouterr().out
    assert main(_aborting(tmp_path / "b", 0, exit_code=1)) == 1 and (tmp_path / "b").read_text().count("x") == 1
    assert main(_aborting(tmp_path / "c", 9), tries=2) < 0 and (tmp_path / "c").read_text().count("x") == 2
