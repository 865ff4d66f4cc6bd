"""`synthgen audit`: measure validation on dense qrels (evaluation/audit/)."""

from __future__ import annotations

from synthgen.core.config_load import load_config


def run(args) -> int:
    from synthgen.evaluation.audit.runner import run_audit

    folder = run_audit(load_config(args.config, args.overrides), args)
    print((folder / "audit.md").read_text(encoding="utf-8"))
    print(folder)
    return 0
