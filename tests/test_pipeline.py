from datasets import Dataset

from synthgen.pipeline import Filter, Pipeline, Step


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
