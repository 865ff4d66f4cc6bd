"""The hardness floor: one seeded draw of random passages for the whole run (validate/floor.py)."""

import json
import zlib

import numpy as np
import pytest

from synthgen.core.config import ScorerConfig, ValidateConfig
from synthgen.validate.floor import FloorDraw
from synthgen.validate.score import ScoreFilter
from synthgen.validate.scorer import BiEncoderScorer, Scorer

POOL = [f"passage {i:03d}" for i in range(200)]


class RecordingScorer(Scorer):
    """A fixed score per pair (from its checksum, or a table), recording every pair sent to the 'model'."""

    def __init__(self, table=None):
        super().__init__()
        self.table, self.seen = table or {}, []

    def _score_new(self, pairs):
        self.seen.extend(pairs)
        return [self.table.get(p, zlib.crc32("|".join(p).encode()) / 2**32) for p in pairs]


def rows(*queries):
    """Two candidates per query; each query's positive is 'pos <qid>'."""
    out = {"query_id": [], "query": [], "positive": [], "negative": []}
    for q in queries:
        for neg in ("cand a", "cand b"):
            out["query_id"].append(q)
            out["query"].append(f"text of {q}")
            out["positive"].append(f"pos {q}")
            out["negative"].append(f"{neg} of {q}")
    return out


def floor_passages(scorer, qid):
    return {p for q, p in scorer.seen if q == f"text of {qid}" and p in set(POOL)}


def test_same_floor_for_a_query_in_any_batch_order_or_worker():
    known = {"qA": ["pos qA"], "qB": ["pos qB"], "qC": ["pos qC"]}
    cfg = ValidateConfig(random_samples=8)
    runs = []
    for batches in ([rows("qA", "qB", "qC")], [rows("qC", "qA"), rows("qB")], [rows("qB"), rows("qA", "qC")]):
        scorer = RecordingScorer()  # a fresh filter per run, as a Ray worker builds its own
        step = ScoreFilter(scorer, cfg, known, random_pool=POOL)
        reasons = {}
        for batch in batches:
            out = step(batch)
            reasons.update({(q, n): r for q, n, r in zip(out["query_id"], out["negative"], out["reason"])})
        runs.append(({q: floor_passages(scorer, q) for q in known}, reasons))
    assert runs[0] == runs[1] == runs[2]
    floors = runs[0][0]
    assert all(len(f) == 8 for f in floors.values())
    # one draw for the run: every query is measured against the same passages
    assert floors["qA"] == floors["qB"] == floors["qC"]


def test_a_querys_own_positives_are_never_in_its_draw():
    draw = FloorDraw(POOL, 8, max_positives=3).texts()
    # qA's known positives are the first three passages of the run's draw; qB's are elsewhere
    known = {"qA": draw[:3], "qB": ["pos qB"]}
    scorer = RecordingScorer()
    batch = rows("qA", "qB")
    batch["positive"] = [draw[0], draw[0], "pos qB", "pos qB"]
    ScoreFilter(scorer, ValidateConfig(random_samples=8), known, random_pool=POOL)(batch)
    floor_a = {p for q, p in scorer.seen if q == "text of qA" and p in set(draw)} - {draw[0]}
    assert floor_a == set(draw[3:11])  # skips its own three, still 8 passages
    assert floor_passages(scorer, "qB") == set(draw[:8])
    assert FloorDraw(POOL, 8).for_query(set(draw[:3])) == draw[3:11]


def test_draw_never_exceeds_the_pool_and_depends_only_on_its_inputs():
    small = POOL[:5]
    assert sorted(FloorDraw(small, 16).for_query()) == sorted(small)
    assert FloorDraw(small, 16).for_query(set(small)) == []
    assert FloorDraw(POOL, 16, 4).texts() == FloorDraw(list(POOL), 16, 4).texts()
    assert len(set(FloorDraw(POOL, 16, 40).texts())) == 56


def test_too_easy_below_the_median_of_the_querys_random_scores():
    table = {("text of q", p): 0.2 + 0.001 * i for i, p in enumerate(POOL)}
    draw = FloorDraw(POOL, 9, 1).for_query({"pos q"})
    floor = float(np.median([table[("text of q", p)] for p in draw]))
    table.update({("text of q", "pos q"): 0.9, ("text of q", "above"): floor + 1e-4,
                  ("text of q", "below"): floor - 1e-4})
    batch = {"query_id": ["q"] * 2, "query": ["text of q"] * 2, "positive": ["pos q"] * 2,
             "negative": ["above", "below"]}
    out = ScoreFilter(RecordingScorer(table), ValidateConfig(random_samples=9), {"q": ["pos q"]},
                      random_pool=POOL)(batch)
    assert out["reason"][0] is None
    assert out["rule"][1] == "too_easy"
    assert json.loads(out["details"][1])["floor"] == pytest.approx(floor)


class CountingModel:
    """The real MiniLM, recording the texts of each encode call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __setattr__(self, name, value):
        if name == "max_seq_length":
            self.model.max_seq_length = value
        else:
            super().__setattr__(name, value)

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        return self.model.encode(texts, **kw)


def test_real_bi_encoder_encodes_the_floor_once_and_rejects_off_topic(minilm):
    pool = ["Tides rise and fall twice a day along most coasts.", "The Moon's gravity pulls on the oceans.",
            "Spring tides happen at new and full moon.", "Neap tides are the weakest tides of the month.",
            "Tidal ranges are largest in funnel-shaped bays.", "Coastal flooding is worst at high spring tides."]
    model = CountingModel(minilm)
    scorer = BiEncoderScorer(model, "minilm", ScorerConfig())
    # max_relative off: this test is about the floor, not answerability
    step = ScoreFilter(scorer, ValidateConfig(random_samples=4, max_relative=10.0), random_pool=pool)
    pos = "Ocean tides are caused by the Moon's gravity, which creates two bulges of water."
    first = step({"query_id": ["q1"] * 2, "query": ["Why are there two high tides a day?"] * 2,
                  "positive": [pos] * 2,
                  "negative": ["High tide comes roughly every twelve hours and twenty-five minutes.",
                               "Espresso is brewed by forcing hot water at 9 bar through finely ground coffee."]})
    assert first["reason"][0] is None and first["rule"][1] == "too_easy"
    assert len(model.calls) == 1  # the whole batch, floor included, in one encode call
    step({"query_id": ["q2"], "query": ["What causes neap tides?"], "positive": [pos],
          "negative": ["Neap tides occur when the Sun and Moon pull at right angles."]})
    encoded = [t for call in model.calls for t in call]
    floor = FloorDraw(pool, 4).for_query()
    assert all(encoded.count(p) == 1 for p in floor)  # the second batch reused the floor's embeddings
    assert len(model.calls) == 2


def test_score_origin_random_measures_difficulty_from_the_querys_floor():
    """With e5-like scales (unrelated text at ~0.94 of the positive), neg/pos >= 0.95 rejects nearly everything
    on topic; from the floor, the same 0.95 means 95% of the way from random passages to the positive."""
    table = {("text of q", p): 0.80 for p in POOL}  # every random passage scores 0.80: the floor
    table.update({("text of q", "pos q"): 0.90, ("text of q", "edit"): 0.88, ("text of q", "copy"): 0.899})
    batch = {"query_id": ["q"] * 2, "query": ["text of q"] * 2, "positive": ["pos q"] * 2,
             "negative": ["edit", "copy"]}
    known = {"q": ["pos q"]}
    zero = ScoreFilter(RecordingScorer(table), ValidateConfig(random_samples=9), known, random_pool=POOL)(batch)
    assert zero["difficulty"][0] == pytest.approx(0.88 / 0.90) and zero["rule"][0] == "answers_query"
    assert zero["score_origin"] == [None, None]
    cfg = ValidateConfig(random_samples=9, score_origin="random")
    out = ScoreFilter(RecordingScorer(table), cfg, known, random_pool=POOL)(batch)
    assert out["score_origin"] == [pytest.approx(0.80)] * 2
    assert out["difficulty"][0] == pytest.approx(0.08 / 0.10) and out["reason"][0] is None
    assert out["difficulty"][1] == pytest.approx(0.099 / 0.10) and out["rule"][1] == "answers_query"
    assert out["negative_score"] == zero["negative_score"]  # only the scale of difficulty moved


def test_score_origin_random_needs_the_floor():
    with pytest.raises(ValueError, match="random_floor"):
        ValidateConfig(score_origin="random", random_floor=None)
