import numpy as np
import pytest

from synthgen.core.config import ScorerConfig, ValidateConfig
from synthgen.validate.quality import QualityFilter
from synthgen.validate.score import ScoreFilter, difficulty
from synthgen.validate.scorer import BiEncoderScorer, Scorer


class TableScorer(Scorer):
    """Scores from a fixed table: unit tests of the threshold arithmetic only."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def _score_new(self, pairs):
        return [self.table[p] for p in pairs]


def test_difficulty_threshold_positive_and_logit_scores():
    # the score at which a negative reaches difficulty 0.95 (the max_relative default)
    assert difficulty(0.8, 0.76) == pytest.approx(0.95)
    # Logits: -2.0 * 0.95 = -1.9 would sit ABOVE the positive; difficulty 0.95 must stay below it.
    assert difficulty(-2.0, -2.1) == pytest.approx(0.95)
    assert difficulty(-2.0, -1.9) > 1.0


def make_batch(negs):
    n = len(negs)
    return {"query_id": ["q"] * n, "query": ["q"] * n, "positive": ["pos"] * n, "negative": negs}


def test_score_filter_reasons_and_columns():
    scorer = TableScorer({("q", "pos"): 0.8, ("q", "same"): 0.79, ("q", "hard"): 0.6, ("q", "easy"): 0.05})
    out = ScoreFilter(scorer, ValidateConfig(min_score=0.1))(make_batch(["same", "hard", "easy"]))
    assert out["reason"][0] == "answers_query (relative: neg=0.7900, pos=0.8000, difficulty=0.988 >= 0.95)"
    assert out["reason"][1] is None
    assert out["reason"][2].startswith("too_easy")
    assert out["difficulty"][1] == pytest.approx(0.75)
    assert scorer.pairs_scored == 4  # the positive pair is scored once, not once per row


def test_score_filter_logit_scale():
    scorer = TableScorer({("q", "pos"): -2.0, ("q", "a"): -1.0, ("q", "b"): -2.05, ("q", "c"): -4.0})
    reasons = ScoreFilter(scorer, ValidateConfig())(make_batch(["a", "b", "c"]))["reason"]
    assert reasons[0].startswith("answers_query") and reasons[1].startswith("answers_query")
    assert reasons[2] is None


def test_quality_filter():
    batch = make_batch(
        ["", "short one", "As an AI, I cannot write this passage for you.",
         "Here is a passage about tides and the Moon, as requested.",
         "Neap tides occur at the quarter moons when the pulls are at right angles."])
    batch["positive"] = ["Spring tides occur at new and full moon when the Sun and Moon are aligned."] * 5
    reasons = QualityFilter(ValidateConfig(min_chars=20))(batch)["reason"]
    assert reasons[0] == "empty"
    assert reasons[1].startswith("too_short")
    assert reasons[2].startswith("meta_text") and reasons[3].startswith("meta_text")
    assert reasons[4] is None


def test_length_ratio_bounds():
    cfg = ValidateConfig(min_chars=0, language=None, min_length_ratio=0.5, max_length_ratio=2.0)
    batch = make_batch(["x" * 40, "x" * 100, "x" * 250])
    batch["positive"] = ["p" * 100] * 3
    reasons = QualityFilter(cfg)(batch)["reason"]
    assert reasons == ["length_ratio (neg/pos=0.40 < 0.5)", None, "length_ratio (neg/pos=2.50 > 2.0)"]


def test_difficulty_is_scale_free():
    from synthgen.validate.score import difficulty

    assert difficulty(0.8, 0.6) == pytest.approx(0.75)
    assert difficulty(-2.0, -2.1) == pytest.approx(0.95)  # logits: a bit below the positive
    assert difficulty(-2.0, -1.0) > 1.0  # scores above a negative positive: harder than the positive
    # A positive scoring exactly 0 still gives a defined value: the negative scores above it.
    assert difficulty(0.0, 0.3) > 1.0 and difficulty(0.0, -0.3) < 0.0


def test_real_bi_encoder_ranks_copy_above_off_topic(minilm):
    scorer = BiEncoderScorer(minilm, "minilm", ScorerConfig())
    q = "Why are there two high tides a day?"
    pos = "Ocean tides are caused by the Moon's gravity, which creates two bulges of water, so coasts get two high tides a day."
    off = "Espresso is brewed by forcing hot water at 9 bar through finely ground coffee."
    out = ScoreFilter(scorer, ValidateConfig())({"query_id": ["q"] * 2, "query": [q] * 2,
                                                 "positive": [pos] * 2, "negative": [pos, off]})
    assert out["reason"][0].startswith("answers_query")  # a copy of the positive answers the query
    assert out["reason"][1] is None
    assert out["negative_score"][0] == pytest.approx(out["positive_score"][0], abs=1e-5)
    assert out["negative_score"][1] < 0.3 < out["positive_score"][0]


def test_markup_debris_is_rejected():
    cfg = ValidateConfig(min_chars=0, language=None, min_length_ratio=0, max_length_ratio=100)
    batch = make_batch(['] } ``` Justification: the passage above talks about tides and the Moon.',
                        '{"passages": leftover text about the tides',
                        'Tides rise twice a day.\\nThis has an escaped newline',
                        'Spring tides occur at new and full moon.'])
    reasons = QualityFilter(cfg)(batch)["reason"]
    assert [r.split(" ")[0] if r else None for r in reasons] == ["markup", "markup", "markup", None]


def test_reference_is_the_weakest_known_positive():
    scorer = TableScorer({("q", "p1"): 0.9, ("q", "p2"): 0.5, ("q", "n"): 0.6})
    batch = {"query_id": ["q"], "query": ["q"], "positive": ["p1"], "negative": ["n"]}
    known = {"q": ["p1", "p2"]}
    weakest = ScoreFilter(scorer, ValidateConfig(random_floor=None, reference="weakest"), known)(dict(batch))
    pair = ScoreFilter(scorer, ValidateConfig(random_floor=None, reference="pair"), known)(dict(batch))
    # 0.6 >= 0.95 x 0.5 (the weakest positive): answers; against its own positive (0.9) it is only 0.67
    assert weakest["reason"][0].startswith("answers_query") and weakest["difficulty"][0] == pytest.approx(1.2)
    assert pair["reason"][0] is None and pair["difficulty"][0] == pytest.approx(0.6 / 0.9)
    assert weakest["positive_score"][0] == 0.9  # the column still holds the pair's own positive


def test_random_floor_drops_negatives_easier_than_random_passages():
    pool = [f"r{i}" for i in range(10)]
    table = {("q", "pos"): 0.9, ("q", "hard"): 0.5, ("q", "easy"): 0.1}
    table.update({("q", r): 0.2 + 0.01 * i for i, r in enumerate(pool)})  # median of the draw ~0.245
    scorer = TableScorer(table)
    out = ScoreFilter(scorer, ValidateConfig(random_samples=10), random_pool=pool)(make_batch(["hard", "easy"]))
    assert out["reason"][0] is None
    assert out["reason"][1] == "too_easy (neg=0.1000, pos=0.9000 < random passages' q0.5=0.2450)"
    off = ScoreFilter(scorer, ValidateConfig(random_floor=None), random_pool=pool)(make_batch(["easy"]))
    assert off["reason"][0] is None


def test_copy_of_a_sibling_positive_is_rejected():
    from synthgen.validate.dedup import DedupFilter

    sibling = "Neap tides happen at the quarter moons, when the Sun and Moon pull at right angles."
    batch = {"query_id": ["q", "q"], "positive": ["Spring tides follow new and full moons."] * 2,
             "negative": [sibling + " ", "Tidal power plants turn the flow of water into electricity."]}
    reasons = DedupFilter(ValidateConfig(), {"q": ["Spring tides follow new and full moons.", sibling]}).decide(batch)
    assert reasons[0].startswith("copies_positive") and reasons[1] is None


def test_near_positive_uses_the_querys_own_positive_spread(minilm):
    from synthgen.validate.near_positive import NearPositiveFilter

    scorer = BiEncoderScorer(minilm, "minilm", ScorerConfig())
    positives = ["Vitamin D deficiency is common in winter at northern latitudes.",
                 "Low vitamin D levels are frequent in people who get little sunlight in winter.",
                 "Sun exposure is the main source of vitamin D; deficiency rises in the dark months."]
    near = "In winter, vitamin D deficiency becomes widespread because of limited sunlight."
    far = "Espresso is brewed by forcing hot water through finely ground coffee."
    batch = {"query_id": ["q"] * 3, "positive": [positives[0]] * 3, "negative": [near, far, near],
             "negative_id": ["d1", "d2", None]}
    reasons = NearPositiveFilter(scorer, {"q": positives}, quantile=0.2).decide(batch)
    assert reasons[0].startswith("near_positive (sim=") and reasons[1] is None
    assert reasons[2] is None  # LLM rows (no corpus id) are left to the scorer
    single = NearPositiveFilter(scorer, {"q": positives[:1]}, quantile=0.2).decide(
        {**batch, "positive": [positives[0]] * 3})
    assert single == [None, None, None]  # one known positive and no fallback: no statistic, rule off
    fallback = NearPositiveFilter(scorer, {"q": positives[:1]}, 0.2, fallback=0.5).decide(
        {**batch, "positive": [positives[0]] * 3})
    assert fallback[0].startswith("near_positive") and "fallback" in fallback[0] and fallback[1] is None


def test_near_positive_lexical_uses_tfidf_and_the_querys_own_spread():
    from synthgen.validate.lexical import TfidfEncoder
    from synthgen.validate.near_positive import NearPositiveFilter, own_threshold, similarities

    positives = ["Curcumin from turmeric lowered amyloid plaques in mice.",
                 "Turmeric curcumin reduced amyloid plaque burden in an Alzheimer model.",
                 "Dietary curcumin and amyloid: plaque clearance in transgenic mice."]
    shares_terms = "Curcumin cleared amyloid plaques in transgenic mice fed turmeric."
    other = "Coffee drinking and the risk of kidney stones in women."
    pool = positives + [shares_terms, other, "Kidney stones and oxalate intake.", "Mice fed coffee lived longer."]
    enc = TfidfEncoder(pool)
    pos = enc.embed(positives)
    threshold = own_threshold(pos, 0.05)
    nearest = similarities(pos, pos)
    np.fill_diagonal(nearest, -1)
    assert threshold == pytest.approx(float(np.quantile(nearest.max(axis=1), 0.05)))
    batch = {"query_id": ["q"] * 3, "positive": [positives[0]] * 3, "negative": [shares_terms, other, shares_terms],
             "negative_id": ["d1", "d2", None]}
    reasons = NearPositiveFilter(enc, {"q": positives}, 0.05, rule="near_positive_lexical").decide(batch)
    sim = float(similarities(enc.embed([shares_terms]), pos).max())
    assert sim >= threshold > float(similarities(enc.embed([other]), pos).max())
    assert reasons[0].rule == "near_positive_lexical" and reasons[0].values["sim"] == pytest.approx(sim)
    assert reasons[1] is None and reasons[2] is None  # a true negative, and an LLM row (no corpus id)


def test_prompts_are_put_before_queries_and_passages(minilm):
    plain = BiEncoderScorer(minilm, "m", ScorerConfig())
    e5 = BiEncoderScorer(minilm, "m", ScorerConfig(query_prompt="query: ", passage_prompt="passage: "))
    q, p = "Why is the sky blue?", "Rayleigh scattering of sunlight makes the sky look blue."
    vq, vp = minilm.encode(["query: " + q, "passage: " + p], normalize_embeddings=True)
    assert e5.score([q], [p])[0] == pytest.approx(float(vq @ vp), abs=1e-5)
    assert plain.score([q], [p])[0] != pytest.approx(e5.score([q], [p])[0], abs=1e-4)
    assert e5.embed([p])[0] == pytest.approx(vp, abs=1e-5)


def test_tfidf_idf_sample_reads_only_the_sampled_passages(monkeypatch):
    """A corpus larger than the IDF sample is read at the sampled positions only, never whole."""
    import synthgen.validate.lexical as lexical

    class LazyPool:  # a corpus that reads texts on demand, recording which
        def __init__(self, n):
            self.n, self.read = n, []

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            self.read.append(i)
            return f"tides moon gravity passage number {i} " + ("ocean" if i % 2 else "coast")

    monkeypatch.setattr(lexical, "IDF_SAMPLE", 50)
    pool = LazyPool(1000)
    enc = lexical.TfidfEncoder(pool)
    rows = enc.embed(["tides and the moon", "coast"])
    assert len(pool.read) == 50 and len(set(pool.read)) == 50
    assert rows.shape[0] == 2 and rows.shape[1] == len(enc.vectorizer.vocabulary_)
    other = LazyPool(1000)
    lexical.TfidfEncoder(other).embed(["coast"])
    assert other.read == pool.read  # seeded: the same sample in every run and worker
