"""`synthgen eval`: A/B of negative sources by the retriever they train (evaluation/)."""

from __future__ import annotations


def run(args) -> int:
    from synthgen.evaluation.eval_run import cmd_eval

    return cmd_eval(args)
