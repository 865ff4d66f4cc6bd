"""`synthgen push`: publish a run to the Hugging Face Hub (io/push.py)."""

from __future__ import annotations


def run(args) -> int:
    from synthgen.io.push import push

    print(push(args.run, args.repo_id, args.private, num_negatives=args.num_negatives))
    return 0
