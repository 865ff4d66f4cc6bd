"""NoKnownPositivesBatchSampler: no in-batch negative that the rows themselves know to be a positive."""

from __future__ import annotations

import pytest
from datasets import Dataset

from synthgen.training.batch_sampler import NoKnownPositivesBatchSampler

# Query A has positives a1, a2 and shares a2 with query B; C's negative is A's positive a1; D, E, F stand alone.
ROWS = [("A", "a1", "n1"), ("A", "a2", "n2"), ("B", "a2", "n3"), ("B", "b1", "n4"), ("C", "c1", "a1"),
        ("D", "d1", "n5"), ("E", "e1", "n6"), ("F", "f1", "n7"), ("F", "f2", "n8")]


def dataset(rows=ROWS) -> Dataset:
    return Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows],
                              "negative": [r[2] for r in rows]})


def conflicts(batch: list[int], rows=ROWS, extra: dict[str, set[str]] | None = None) -> list[tuple[int, int]]:
    """(i, j) where row j's positive or negative is a known positive of row i's query, or a text repeats."""
    known: dict[str, set[str]] = {}
    for q, p, _ in rows:
        known.setdefault(q, set()).add(p)
    for q, more in (extra or {}).items():
        known.setdefault(q, set()).update(more)
    out = []
    for i in batch:
        for j in batch:
            if i != j and (set(rows[j]) & set(rows[i]) or {rows[j][1], rows[j][2]} & known[rows[i][0]]):
                out.append((i, j))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_every_row_once_and_no_batch_holds_a_known_positive_of_another_rows_query(seed):
    sampler = NoKnownPositivesBatchSampler(dataset(), batch_size=4, drop_last=False, seed=seed)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(ROWS)))
    assert all(1 <= len(b) <= 4 for b in batches)
    assert all(not conflicts(b) for b in batches)


def test_the_conflicts_it_avoids_are_common_without_it():
    """All 9 rows in one batch would hold conflicting (row, row) pairs; the sampler splits them so none is left."""
    assert len(conflicts(list(range(len(ROWS))))) > 0
    batches = list(NoKnownPositivesBatchSampler(dataset(), batch_size=len(ROWS), seed=0))
    assert len(batches) > 1 and all(not conflicts(b) for b in batches)


def test_known_positives_given_outside_the_rows_count_too():
    """D's qrels say e1 is relevant to D too, though no row pairs them: D and E never share a batch."""
    extra = {"D": {"e1"}}
    for seed in range(20):
        sampler = NoKnownPositivesBatchSampler(dataset(), batch_size=4, seed=seed, known=extra)
        for b in sampler:
            assert not (5 in b and 6 in b)
            assert not conflicts(b, extra=extra)


def test_order_follows_the_seed_and_the_epoch_and_drop_last_drops_short_batches():
    rows = [(f"q{i}", f"p{i}", f"n{i}") for i in range(10)]
    first = list(NoKnownPositivesBatchSampler(dataset(rows), batch_size=3, seed=1))
    assert first == list(NoKnownPositivesBatchSampler(dataset(rows), batch_size=3, seed=1))
    other = NoKnownPositivesBatchSampler(dataset(rows), batch_size=3, seed=1)
    other.set_epoch(1)
    assert list(other) != first
    assert [len(b) for b in first] == [3, 3, 3, 1] and len(other) == 4
    dropped = NoKnownPositivesBatchSampler(dataset(rows), batch_size=3, drop_last=True, seed=1)
    assert [len(b) for b in dropped] == [3, 3, 3] and len(dropped) == 3


def test_label_columns_are_not_texts_and_n_tuple_columns_are():
    ds = Dataset.from_dict({"anchor": ["A", "B"], "positive": ["a1", "b1"], "negative_1": ["x", "a1"],
                            "negative_2": ["y", "z"], "label": [[0.5, 0.1], [0.2, 0.3]]})
    sampler = NoKnownPositivesBatchSampler(ds, batch_size=2, valid_label_columns=["label"])
    assert sorted(map(sorted, sampler)) == [[0], [1]]  # B's first negative is A's positive


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        NoKnownPositivesBatchSampler(dataset(), batch_size=0)
    with pytest.raises(ValueError, match="anchor and a positive"):
        NoKnownPositivesBatchSampler(Dataset.from_dict({"anchor": ["A"]}), batch_size=2)


def test_sentence_transformers_builds_it_from_the_training_arguments(minilm):
    """The trainer instantiates the class from `batch_sampler=` with the dataset and its own arguments."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from synthgen.training.trainer import loss_classes, sampler_for

    mnrl, _, samplers = loss_classes()
    args = SentenceTransformerTrainingArguments(output_dir="unused", per_device_train_batch_size=4,
                                                batch_sampler=sampler_for("no-known-positives", samplers),
                                                report_to="none", use_cpu=True)
    trainer = SentenceTransformerTrainer(model=minilm, args=args, train_dataset=dataset(), loss=mnrl(minilm))
    built = trainer.get_batch_sampler(dataset(), batch_size=4, drop_last=False, seed=3)
    assert isinstance(built, NoKnownPositivesBatchSampler) and built.seed == 3
    assert all(not conflicts(b) for b in built)
    assert sampler_for("no-duplicates", samplers) == samplers.NO_DUPLICATES
