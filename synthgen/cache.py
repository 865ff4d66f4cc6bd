"""A content-addressed cache of LLM calls and scorer results in one SQLite file per run folder.

Every result is written the moment it arrives (WAL journal, one small transaction each), so a run killed
at any point loses at most the requests that were in flight; rerunning the same command reads finished
items from here and sends only the missing ones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts` (model, rendered prompt, sampling parameters, ...)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RunCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Results arrive on the LLM client's event-loop thread; one connection behind a lock serves all.
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS llm (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL)")

    def get_llm(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._get("llm", "value", keys).items()}

    def put_llm(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO llm (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, ensure_ascii=False)))

    def get_scores(self, keys: Iterable[str]) -> dict[str, float]:
        return self._get("scores", "score", keys)

    def put_scores(self, items: dict[str, float]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO scores (key, score) VALUES (?, ?)", items.items())
            self._db.execute("COMMIT")

    def count(self, table: str = "llm") -> int:
        assert table in ("llm", "scores")
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def _get(self, table: str, column: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        out: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk)
                out.update(rows.fetchall())
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
