"""`synthgen export`: a run's triplets in a trainer's format (io/export.py)."""

from __future__ import annotations


def run(args) -> int:
    from synthgen.io.export import export

    info = export(args.run, args.format, args.output, args.num_negatives, args.scores, args.labels)
    print(f"{info['format']}: {info['rows']} rows from {info['source']}")
    print(info["path"])
    return 0
