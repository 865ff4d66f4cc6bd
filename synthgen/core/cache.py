"""A content-addressed cache of LLM calls, scorer results and scorer embeddings in one SQLite file, shared by
the runs of an output folder (`<output_dir>/cache.sqlite`, or `cache_file`).

Keys hold exactly what decides a result (model identity, rendered prompt, sampling; scorer kind, model and
max_length), so runs that differ only in other settings (a validation threshold) reuse each other's work.
Every result is written the moment it arrives (WAL journal, one small transaction each), so a run killed
at any point loses at most the requests that were in flight; rerunning the same command reads finished
items from here and sends only the missing ones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts` (model, rendered prompt, sampling parameters, ...)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


TABLES = ("llm", "scores", "embeddings")


def shared_cache_path(output_dir: str | Path, cache_file: str | None = None) -> Path:
    """Where the runs of an output folder keep their LLM answers and scores."""
    return Path(cache_file) if cache_file else Path(output_dir) / "cache.sqlite"


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
            # A bi-encoder scorer's text embeddings (float32 bytes): near_positive compares passages with each
            # other, which no (query, passage) score covers; on CPU re-encoding a corpus is most of a mine run.
            self._db.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            for table in TABLES:  # when each entry was written, for `synthgen cache prune --older-than`
                cols = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if "created" not in cols:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN created REAL")

    def get_llm(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self._get("llm", "value", keys).items()}

    def put_llm(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO llm (key, value, created) VALUES (?, ?, ?)",
                             (key, json.dumps(value, ensure_ascii=False), time.time()))

    def get_scores(self, keys: Iterable[str]) -> dict[str, float]:
        return self._get("scores", "score", keys)

    def put_scores(self, items: dict[str, float]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            now = time.time()
            self._db.executemany("INSERT OR REPLACE INTO scores (key, score, created) VALUES (?, ?, ?)",
                                 [(k, v, now) for k, v in items.items()])
            self._db.execute("COMMIT")

    def get_embeddings(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        return {k: np.frombuffer(v, dtype=np.float32) for k, v in self._get("embeddings", "vec", keys).items()}

    def put_embeddings(self, items: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            now = time.time()
            self._db.executemany("INSERT OR REPLACE INTO embeddings (key, vec, created) VALUES (?, ?, ?)",
                                 [(k, np.asarray(v, dtype=np.float32).tobytes(), now) for k, v in items.items()])
            self._db.execute("COMMIT")

    def count(self, table: str = "llm") -> int:
        assert table in TABLES
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

    # ------------------------------------------------------------------ `synthgen cache stats|prune`

    def stats(self) -> dict[str, Any]:
        """Entries per table, cached LLM failures, oldest/newest entry time and the file size."""
        with self._lock:
            out: dict[str, Any] = {"path": str(self.path)}
            for table in TABLES:
                n, lo, hi = self._db.execute(f"SELECT COUNT(*), MIN(created), MAX(created) FROM {table}").fetchone()
                out[table] = {"entries": n, "oldest": lo, "newest": hi}
            out["llm"]["failures"] = self._db.execute(
                "SELECT COUNT(*) FROM llm WHERE json_extract(value, '$.error') IS NOT NULL").fetchone()[0]
        out["bytes"] = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return out

    def prune(self, older_than_s: float | None = None, failures: bool = False) -> dict[str, int]:
        """Delete entries written before `older_than_s` seconds ago (entries without a time count as old),
        and/or cached LLM failures (so the next run asks again); returns rows deleted per table."""
        deleted = {t: 0 for t in TABLES}
        with self._lock:
            self._db.execute("BEGIN")
            if older_than_s is not None:
                cutoff = time.time() - older_than_s
                for table in TABLES:
                    cur = self._db.execute(f"DELETE FROM {table} WHERE created IS NULL OR created < ?", (cutoff,))
                    deleted[table] += cur.rowcount
            if failures:
                cur = self._db.execute("DELETE FROM llm WHERE json_extract(value, '$.error') IS NOT NULL")
                deleted["llm"] += cur.rowcount
            self._db.execute("COMMIT")
            self._db.execute("VACUUM")
        return deleted


def cached_ask(backend, cache: RunCache | None, prompts: list, parse, schema: dict[str, Any] | None,
               max_tokens: int, temperature: float, task: str) -> list[tuple[Any, str | None]]:
    """backend.ask for the prompts not yet answered in `cache` (judge, synthetic queries); each answer is cached
    as it arrives (a crash loses none that finished), failures are not (a rerun asks again)."""
    # The generation's own sampling and schema do not apply to these questions; model, seed and top_p do.
    engine = {k: v for k, v in backend.cache_params().items()
              if k not in ("temperature", "max_tokens", "response_format", "multi", "n")}
    params = {**engine, "task": task, "temperature": temperature, "max_tokens": max_tokens, "schema": schema}
    keys = [content_key(params, p) for p in prompts]
    known = cache.get_llm(keys) if cache is not None else {}
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in known:
            first.setdefault(k, i)
    todo = list(first)

    def persist(j: int, value: Any, error: str | None) -> None:  # each answer as it arrives
        known[todo[j]] = {"value": value, "error": error}
        if cache is not None and error is None:
            cache.put_llm(todo[j], known[todo[j]])

    fresh = backend.ask([prompts[first[k]] for k in todo], parse, schema, max_tokens, temperature,
                        on_result=persist) if todo else []
    for k, (value, error) in zip(todo, fresh):
        if k not in known:  # a backend that did not report it as it arrived
            persist(todo.index(k), value, error)
    return [(known[k]["value"], known[k]["error"]) for k in keys]
