"""synthgen: validated hard negatives for dense-retriever training, written by an LLM or mined from a corpus.

commands:
  generate   the whole pipeline (read, prompt, generate, validate, write) into outputs/<run>
  mine       BM25 / dense / random negatives (optionally mixed with LLM ones), validated, into outputs/<run>
  validate   the validation stage alone on a candidates file
  export     a run in a trainer's format (triplet, n-tuple, labeled-pair, margin-mse, flagembedding, tevatron[-v2], hub)
  push       publish a run to the Hugging Face Hub (one config per training format)
  prompts    list the strategies, or show what one sends
  config     every config key with type, default and help; or the resolved config
  eval       A/B of negative sources: fine-tune MiniLM on each, score nDCG@10 / Recall@100
  compare    paired tests of eval conditions from different runs (no training)
  train      fine-tune a bi-encoder on a run's negatives, distilling the run's scorer (in-batch KL by default)
  audit      measure validation on dense qrels: hide positives, count kept false negatives

Every command that reads the config takes --config FILE and --set KEY=VALUE (see `synthgen config --defaults`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys

from synthgen.core.config import ConfigError

log = logging.getLogger("synthgen")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set llm.concurrency=8 (repeatable; the value is typed by the "
                        "key: text keys keep the text as given)")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("synthgen")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"synthgen {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="run the whole pipeline and write a dataset")
    _add_config_args(gen)
    val = sub.add_parser("validate", help="run the validation stage alone on a candidates file")
    val.add_argument("--input", required=True, help="dataset folder or .jsonl/.parquet/.csv with query, positive, negative")
    val.add_argument("--output", required=True, help="folder for kept/, rejects/, stats.json and histograms")
    _add_config_args(val)
    pr = sub.add_parser("prompts", help="list strategies, or render one for a sample row")
    _add_config_args(pr)
    pr.add_argument("--render", metavar="STRATEGY", help="print the messages this strategy sends")
    mi = sub.add_parser("mine", help="mine random/BM25/dense negatives (mixed with synthetic ones), validate, write")
    _add_config_args(mi)
    ex = sub.add_parser("export", help="write a run's triplets in a trainer's format")
    ex.add_argument("run", help="run folder (its triplets/ or kept/) or a dataset folder")
    from synthgen.io.formats import FORMATS, LABELS

    ex.add_argument("--format", required=True, choices=FORMATS,
                    help="triplet, n-tuple, labeled-pair: dataset folders; flagembedding, tevatron (v1 layout), "
                         "tevatron-v2: train.jsonl (+ corpus.jsonl); hub: the folder `push` uploads")
    ex.add_argument("--output", required=True, help="dataset folder, or the folder for the .jsonl files / hub layout")
    ex.add_argument("--num-negatives", type=int, help="n-tuple, hub: negatives per row (default: the most common count)")
    ex.add_argument("--scores", action="store_true", help="flagembedding: add pos_scores/neg_scores (all must exist)")
    ex.add_argument("--labels", choices=list(LABELS), default="score",
                    help="labeled-pair: " + "; ".join(f"{k} = {v}" for k, v in LABELS.items()))
    pu = sub.add_parser("push", help="publish a run to the Hugging Face Hub (token: HF_TOKEN or `hf auth login`)")
    pu.add_argument("run", help="run folder")
    pu.add_argument("--repo-id", required=True, help="ORG/NAME of the dataset repository")
    vis = pu.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_const", const=True, default=None,
                     help="make the repository private (also an existing one)")
    vis.add_argument("--public", dest="private", action="store_const", const=False,
                     help="make the repository public (also an existing one); neither: the Hub's default for a "
                          "new repository, unchanged for an existing one")
    pu.add_argument("--num-negatives", type=int, help="n-tuple config: negatives per row (default: the most common)")
    co = sub.add_parser("config", help="every config key with type, default and help; or the resolved config")
    what = co.add_mutually_exclusive_group()
    what.add_argument("--defaults", action="store_true", help="list every key: type, default, help")
    what.add_argument("--explain", metavar="KEY", help="one key (or a section, e.g. llm): type, default, value, help")
    _add_config_args(co)
    au = sub.add_parser("audit", help="measure validation on dense qrels: hide positives, run mine/generate, "
                                      "count kept false negatives, compare with sentence-transformers' miner")
    from synthgen.evaluation.audit.runner import add_audit_args

    add_audit_args(au)
    _add_config_args(au)
    from synthgen.commands.cache import add_cache_args
    from synthgen.evaluation.eval_args import add_eval_args

    add_cache_args(sub)

    ev = sub.add_parser("eval", help="A/B negative sources: fine-tune MiniLM on each, score nDCG@10 / Recall@100")
    add_eval_args(ev)
    _add_config_args(ev)
    from synthgen.commands.compare import add_compare_args

    add_compare_args(sub.add_parser("compare", help="paired tests of eval conditions across runs: bootstrap and "
                                                    "t-test on the per-query nDCG@10 they kept"))
    from synthgen.commands.train import add_train_args

    tr = sub.add_parser("train", help="fine-tune a bi-encoder on a run's negatives with the run's scorer as teacher")
    add_train_args(tr)
    _add_config_args(tr)
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        # `synthgen X --help` starts with what X does; --set keys are listed by `synthgen config --defaults`.
        p.description = p.description or helps.get(name)
        if any(a.dest == "overrides" for a in p._actions):
            p.epilog = "config keys for --set: `synthgen config --defaults`; one key: `synthgen config --explain KEY`"
    return parser


def _sigterm(*_: object) -> None:
    # Turn SIGTERM into an exception so context managers stop the local server.
    raise SystemExit(143)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "sentence_transformers", "datasets", "openai", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _sigterm)
    import datasets

    datasets.disable_progress_bars()  # synthgen shows its own progress; datasets' bars are noise here
    from synthgen.core.progress import quiet_library_bars

    quiet_library_bars()
    from synthgen.core.errors import LoaderError
    from synthgen.core.step import ColumnError
    from synthgen.io.push import PushError
    from synthgen.llm.backend import RunAborted
    from synthgen.llm.prompt import PromptError
    from synthgen.llm.server import ServerError

    try:
        # One module per command (synthgen/commands/), imported only when its command runs.
        return importlib.import_module(f"synthgen.commands.{args.command}").run(args)
    except (ConfigError, LoaderError, ColumnError, PromptError, ServerError, RunAborted, PushError) as exc:
        print(f"synthgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synthgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `synthgen config --defaults | head`: the reader left; not an error
        sys.stdout = None  # nothing more to flush at exit
        return 0
    except OSError as exc:  # e.g. a full disk while writing: the previous complete outputs are untouched
        print(f"synthgen: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - never a bare traceback; -v shows it
        if args.verbose:
            raise
        print(f"synthgen: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(rerun with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
