import json
import pickle

import pytest
from datasets import Dataset

from synthgen.core.config import ValidateConfig
from synthgen.core.step import ColumnError, Filter, Reject, Step, reason_columns
from synthgen.runners.local import Pipeline
from synthgen.validate.quality import QualityFilter


class Upper(Step):
    name = "upper"

    def __call__(self, batch):
        return {**batch, "text": [t.upper() for t in batch["text"]]}


class DropShort(Filter):
    name = "drop_short"

    def decide(self, batch):
        return [None if len(t) > 2 else f"too_short (len={len(t)})" for t in batch["text"]]


def test_pipeline_splits_rejects_and_counts():
    with Pipeline([Upper(), DropShort()]) as p:
        kept, rejects = p.run_batch({"text": ["abc", "x", "hello", "yo"]})
    assert kept == {"text": ["ABC", "HELLO"]}
    (stage, dropped), = rejects
    assert stage == "drop_short" and dropped["text"] == ["X", "YO"]
    assert dropped["reason"] == ["too_short (len=1)", "too_short (len=2)"]
    st = p.stats["drop_short"].as_dict()
    assert (st["in"], st["out"], st["rejected"], st["rejected_by_reason"]) == (4, 2, 2, {"too_short": 2})


def test_steps_run_inside_datasets_map():
    ds = Dataset.from_dict({"text": ["abc", "x"]}).map(Upper(), batched=True).map(DropShort(), batched=True)
    assert ds["text"] == ["ABC", "X"]
    assert ds["reason"] == [None, "too_short (len=1)"]


class NeedsScore(Filter):
    name = "needs_score"
    reads = ("text", "score")

    def __init__(self):
        self.calls = 0

    def decide(self, batch):
        self.calls += 1
        return [None] * len(batch["text"])


class AddsScore(Step):
    name = "adds_score"
    reads = ("text",)
    writes = ("score",)

    def __call__(self, batch):
        return {**batch, "score": [len(t) for t in batch["text"]]}


def test_a_missing_column_fails_at_build_time_naming_step_and_column():
    step = NeedsScore()
    with pytest.raises(ColumnError, match="step 'needs_score' reads column 'score', which neither the input nor an "
                                          r"earlier step provides \(available: query_id, text\)"):
        Pipeline([Upper(), step], columns=["query_id", "text"])
    # Built without columns, the check runs on the rows before the first batch: the step is never called.
    with Pipeline([Upper(), step]) as p, pytest.raises(ColumnError, match="'score'"):
        p.run_all({"query_id": ["q"], "text": ["abc"]}, batch_queries=1, desc="t")
    assert step.calls == 0
    # Once an earlier step writes the column, the same pipeline is fine.
    with Pipeline([AddsScore(), NeedsScore()], columns=["query_id", "text"]) as p:
        kept, rejects = p.run_all({"query_id": ["q"], "text": ["abc"]}, batch_queries=1, desc="t")
    assert kept[0]["score"] == [3] and rejects == []


def test_rejects_carry_rule_and_numbers_and_the_text_is_derived_from_them():
    r = Reject("length_ratio", "neg/pos={ratio:.2f} < {min_ratio}", ratio=0.4, min_ratio=0.5)
    assert (str(r), r.rule, r.values) == ("length_ratio (neg/pos=0.40 < 0.5)", "length_ratio",
                                          {"ratio": 0.4, "min_ratio": 0.5})
    back = pickle.loads(pickle.dumps(r))  # Ray and multiprocessing ship reasons by pickle
    assert isinstance(back, Reject) and (str(back), back.rule, back.values) == (str(r), r.rule, r.values)
    cols = reason_columns([r, None, "legacy_text (x)"])
    assert cols["reason"] == ["length_ratio (neg/pos=0.40 < 0.5)", None, "legacy_text (x)"]
    assert cols["rule"] == ["length_ratio", None, "legacy_text"]
    assert json.loads(cols["details"][0]) == {"ratio": 0.4, "min_ratio": 0.5} and cols["details"][1:] == [None, None]
    assert all(type(v) is str for v in cols["reason"] if v is not None)  # plain str: Arrow takes the column


def test_real_filters_give_structured_reasons():
    cfg = ValidateConfig()
    out = QualityFilter(cfg)({"negative": ["tiny", "A" * 50 + " the of and"], "positive": ["x" * 60, "y" * 60]})
    assert out["rule"][0] == "too_short" and json.loads(out["details"][0]) == {"chars": 4, "min_chars": cfg.min_chars}
    assert out["reason"][0] == f"too_short (chars=4 < {cfg.min_chars})"
    assert out["rule"][1] is None and out["details"][1] is None
