"""`synthgen cache stats|prune`: look into and trim the cache of LLM answers, scores and embeddings an output folder
shares."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from synthgen.core.cache import TABLES, RunCache, shared_cache_path


def add_cache_args(sub) -> None:
    p = sub.add_parser("cache", help="show or prune the shared cache of LLM answers, scores and embeddings")
    p.add_argument("action", choices=["stats", "prune"])
    p.add_argument("--output-dir", default="outputs", help="the output folder whose cache.sqlite to use")
    p.add_argument("--cache-file", help="a cache file elsewhere (the `cache_file` setting)")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="prune: entries written more than DAYS ago")
    p.add_argument("--failures", action="store_true", help="prune: cached LLM failures (they are asked again)")


def _when(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def run(args: argparse.Namespace) -> int:
    from synthgen.core.config import ConfigError

    path = shared_cache_path(args.output_dir, args.cache_file)
    if not path.is_file():
        raise ConfigError(f"no cache at {path} (nothing has run with output_dir={args.output_dir} yet)")
    if args.action == "prune" and args.older_than is None and not args.failures:
        raise ConfigError("cache prune: say what to delete: --older-than DAYS and/or --failures")
    cache = RunCache(path)
    try:
        if args.action == "prune":
            older = None if args.older_than is None else args.older_than * 86400
            deleted = cache.prune(older, args.failures)
            print(f"deleted {deleted['llm']} LLM answers, {deleted['scores']} scores and "
                  f"{deleted['embeddings']} embeddings from {path}")
        stats = cache.stats()
    finally:
        cache.close()
    for table in TABLES:
        for k in ("oldest", "newest"):
            stats[table][k] = _when(stats[table][k])
    print(json.dumps(stats, indent=2))
    return 0
