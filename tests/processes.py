"""Killing a whole run for the kill -9 tests: the process, Ray's workers and everything else in its session."""

from __future__ import annotations

import os
import signal
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
