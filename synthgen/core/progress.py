"""Progress: a tqdm bar on a terminal, periodic log lines otherwise (CI logs, `> file`, pipes).

A bar redrawn with carriage returns is junk in a log file, so when stderr is not a TTY the same calls
log "desc: n/total unit" every LOG_EVERY_S seconds and at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("synthgen.core.progress")

LOG_EVERY_S = 30.0


def is_tty() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class LogProgress:
    """The part of tqdm's interface synthgen uses (context manager, update, close), as log lines."""

    def __init__(self, total: int | None, desc: str, unit: str, every_s: float | None = None):
        # LOG_EVERY_S is read here, not bound at import, so a test can ask for a line per update.
        self.total, self.desc, self.unit = total, desc, unit
        self.every_s = LOG_EVERY_S if every_s is None else every_s
        self.n = 0
        self._last = time.monotonic()
        self._closed = False

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        return f"{self.desc}: {self.n}{total} {self.unit}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        # The last update leaves its line to close(), which says "(done)": one line, not the same count twice.
        if now - self._last >= self.every_s and self.n != self.total:
            self._last = now
            log.info(self._line())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            log.info(self._line() + " (done)")


def progress(total: int | None, desc: str, unit: str = "it") -> Any:
    """tqdm on a terminal, LogProgress elsewhere."""
    if is_tty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit)
    return LogProgress(total, desc, unit)


def quiet_library_bars() -> None:
    """No tqdm bars from the libraries either (transformers' "Loading weights", hub downloads) off a TTY."""
    import os

    if is_tty():
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when transformers is imported later
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    if "transformers" in sys.modules:  # already imported: its flag was set from the hub's at import
        from transformers.utils import logging as tf_logging

        tf_logging.disable_progress_bar()
