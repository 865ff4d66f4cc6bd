"""Killing a whole run for the kill -9 tests: the process, Ray's workers and everything else in its session;
rerunning a Ray run that Ray itself aborted."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def session_members(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            # Fields after the command's closing parenthesis: state, ppid, pgrp, session, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
            if fields and fields[0] != "Z" and int(fields[3]) == sid:  # a zombie has stopped already
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            pass  # gone while we looked
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL the run and everything in its session. Ray moves its workers into process groups of their
    own (same session), so killpg alone leaves a worker that can still finish a request and write it to
    the cache after we counted."""
    deadline = time.monotonic() + 60
    while (members := session_members(sid)) and time.monotonic() < deadline:
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    assert not session_members(sid), "processes of the killed run survived"


# Ray 2.60's driver can abort on an internal RAY_CHECK when a task's reply races its cancellation
# (ray-project/ray#54527 fixed one path of it). The abort kills the run like kill -9 would, so a resumable
# run is simply started again; any other failure is returned as it is.
RAY_ABORT = "You have likely discovered a bug in Ray"


def run_resuming_ray_aborts(command: list[str], before_retry=lambda: None, tries: int = 3, **kwargs):
    """subprocess.run(command), rerun (at most `tries` runs in all) while it dies of Ray's internal abort.
    `before_retry` runs before each rerun (e.g. to count what the aborted run left behind)."""
    for attempt in range(tries):
        done = subprocess.run(command, capture_output=True, text=True, **kwargs)
        if done.returncode == 0 or RAY_ABORT not in done.stderr or attempt == tries - 1:
            return done
        before_retry()
    return done


def main(argv: list[str], tries: int = 3) -> int:
    """`python tests/processes.py CMD...`: run CMD with its output shown, and again (at most `tries` runs) while it
    dies of SIGABRT: for the `ray_driver` tests run apart (Ray's abort message goes to pytest's captured stderr
    and is lost with the process, so the signal is what is left)."""
    for attempt in range(1, tries + 1):
        rc = subprocess.run(argv).returncode
        if rc not in (-signal.SIGABRT, 128 + signal.SIGABRT) or attempt == tries:
            return rc
        print(f"processes.py: {argv[0]} aborted (SIGABRT: Ray's driver check?); run {attempt + 1} of {tries}",
              flush=True)
    return rc


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
