"""`synthgen compare`: paired tests of eval conditions across runs (evaluation/compare_runs.py)."""

from __future__ import annotations

import json


def add_compare_args(p) -> None:
    p.add_argument("baseline", help="RUN:CONDITION every other is tested against, e.g. outputs/eval/cranfield:dense "
                                    "(RUN: an eval output folder or its dataset folder; RUN1,RUN2:CONDITION pools "
                                    "one condition's seeds from several runs: same settings, distinct seeds)")
    p.add_argument("conditions", nargs="+", help="RUN:CONDITION ... tested against the baseline (RUN1,RUN2:... "
                                                "as for the baseline)")
    p.add_argument("--split", choices=["test", "dev", "both"], default="both",
                   help="which scored split to test on (dev for choosing, test for reporting)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")


def run(args) -> int:
    from synthgen.evaluation.compare_runs import SPLITS, compare_specs, format_rows

    splits = SPLITS if args.split == "both" else (args.split,)
    rows = compare_specs(args.baseline, args.conditions, splits)
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
    return 0
