"""`synthgen mine`: exact chunked search, exclusion of positives, rank window, round-robin dealing, seeded random
negatives, the per-source mix, the embedding cache, and a real run on a Cranfield subset."""

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk

from synthgen.core.config import MineConfig
from synthgen.io.beir import load_qrels
from synthgen.negatives.corpus import Corpus, load_mining_corpus
from synthgen.negatives.miners.bm25 import BM25Miner
from synthgen.negatives.miners.dense import DenseMiner, exact_top_k
from synthgen.negatives.miners.random import RandomMiner
from synthgen.negatives.mix import MixFilter
from synthgen.negatives.sources import MinedSource
from tests.conftest import shared_dataset


def test_exact_top_k_matches_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((1000, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    np.save(tmp_path / "emb.npy", corpus)
    mm = np.load(tmp_path / "emb.npy", mmap_mode="r")
    for chunk in (97, 1000, 5000):
        idx, scores = exact_top_k(queries, mm, 25, chunk)
        full = queries @ corpus.T
        expected = np.argsort(-full, axis=1)[:, :25]
        assert idx.shape == (7, 25)
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), rtol=1e-5)
    idx, _ = exact_top_k(queries, mm, 5000, 64)  # k above the corpus size: the whole corpus, ranked
    assert idx.shape == (7, 1000)


def _pairs(qid, query, positives):
    return {"query_id": [qid] * len(positives), "query": [query] * len(positives),
            "positive_id": [p for p, _ in positives], "positive": [t for _, t in positives]}


WING = "the lift of a swept wing in a propeller slipstream at different angles of attack and velocity ratios"


def _toy_corpus() -> Corpus:
    ids = [f"d{i}" for i in range(30)]
    # Distinct filler per passage (random letters), so only the crafted near-copy is a near-copy.
    rng = np.random.default_rng(1)
    filler = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz "), 60)) for _ in range(30)]
    texts = [f"{'wing slipstream lift' if i < 12 else 'heat conduction in slabs'} {filler[i]}" for i in range(30)]
    texts[0] = WING
    texts[1] = WING.replace("angles", "angle") + "."  # a near-copy of the positive under another id
    return Corpus(ids, texts)


def test_mined_source_excludes_positives_window_and_round_robin():
    corpus = _toy_corpus()
    cfg = MineConfig(sources={"bm25": 2}, k=2, range_min=1, range_max=12)
    src = MinedSource(BM25Miner(corpus), corpus, cfg)
    query = "swept wing propeller slipstream"
    pairs = _pairs("q1", query, [("d0", WING), ("d5", corpus.texts[5])])
    out = src(pairs)
    # Positives by id (d0, d5) and the near-copy of d0 (d1) never come out.
    assert not {"d0", "d1", "d5"} & set(out["negative_id"])
    assert src.excluded["positive_id"] == 2 and src.excluded["positive_text"] == 1
    # 2 pairs x k=2, each pair its own negatives, dealt round-robin from ranks 1.. of the filtered ranking.
    assert len(out["negative"]) == 4
    by_pair = {pid: [n for p, n in zip(out["positive_id"], out["negative_id"]) if p == pid] for pid in ("d0", "d5")}
    assert len(set(by_pair["d0"]) | set(by_pair["d5"])) == 4
    full = src.miner.rank(["q1"], [query], 30)[0]
    assert {corpus.ids[i] for i in full[:2]} == {"d0", "d1"}  # the positive and its copy rank first
    ranked = [i for i in full if corpus.ids[i] not in ("d0", "d1", "d5")]
    window = [corpus.ids[i] for i in ranked[1:12]]
    assert by_pair["d0"] == [window[0], window[2]] and by_pair["d5"] == [window[1], window[3]]
    assert set(out["source"]) == {"bm25"} and set(out["strategy"]) == {"bm25[1:12]"}
    assert all(m.startswith("bm25s-") for m in out["model"]) and all(r is None for r in out["reason"])
    assert out["negative"] == [corpus.texts[corpus.ids.index(n)] for n in out["negative_id"]]


def test_bm25_drops_passages_sharing_no_term():
    corpus = _toy_corpus()
    cfg = MineConfig(sources={"bm25": 4}, k=4)
    out = MinedSource(BM25Miner(corpus), corpus, cfg)(_pairs("q", "zeppelin", [("d3", corpus.texts[3])]))
    assert out["negative"] == []


def test_random_negatives_are_seeded_per_query():
    corpus = _toy_corpus()
    cfg = MineConfig(sources={"random": 3}, k=3, seed=7)
    src = MinedSource(RandomMiner(corpus, 7), corpus, cfg)
    qa, qb = _pairs("qA", "x", [("d2", corpus.texts[2])]), _pairs("qB", "y", [("d4", corpus.texts[4])])
    alone = src(qa)
    both = src({k: qb[k] + qa[k] for k in qa})  # another query in the same batch changes nothing for qA
    assert alone["negative_id"] == [n for q, n in zip(both["query_id"], both["negative_id"]) if q == "qA"]
    assert len(alone["negative_id"]) == 3 and "d2" not in alone["negative_id"]
    other_seed = MinedSource(RandomMiner(corpus, 8), corpus, cfg)(qa)
    assert other_seed["negative_id"] != alone["negative_id"]
    assert set(alone["strategy"]) == {"random"} and set(alone["source"]) == {"random"}


def test_mix_filter_keeps_hardest_per_source():
    batch = {"query_id": ["q"] * 5, "positive_id": ["p"] * 5,
             "source": ["bm25", "bm25", "dense", "dense", "random"],
             "negative_score": [0.3, 0.5, 0.4, 0.2, 0.1]}
    reasons = MixFilter({"bm25": 1, "dense": 2, "random": 0}).decide(batch)
    assert reasons[1] is None and reasons[0] == "over_quota (source=bm25: rank 2 > 1)"
    assert reasons[2] is None and reasons[3] is None
    assert reasons[4] == "over_quota (source=random: rank 1 > 0)"


def test_shared_mix_gives_each_positive_the_querys_hardest_free_passage():
    from synthgen.negatives.mix import SharedMix

    class FixedScorer:
        def score(self, queries, passages):
            return [0.5] * len(queries)

    long_pos, short_pos = "A positive passage of a reasonable length.", "Tiny."
    rows = [("p1", "a", 0.9), ("p1", "b", 0.3), ("p2", "c", 0.5), ("p3", "d", 0.8), ("s1", "syn", 0.95),
            ("s1", "syn2", 0.2)]
    batch = {"query_id": ["q"] * 6, "query": ["Q"] * 6, "positive_id": [r[0] for r in rows],
             "positive": [long_pos] * 6, "negative": [f"Negative passage {r[1]} of a similar length." for r in rows],
             "negative_id": [r[1] for r in rows[:4]] + [None, None],
             "source": ["dense"] * 4 + ["synthetic"] * 2, "negative_score": [r[2] for r in rows],
             "positive_score": [0.6, 0.6, 0.7, 0.8, 0.6, 0.6], "difficulty": [1.5, 0.5, 0.7, 1.0, 1.6, 0.3]}
    pairs = {"q": [("p1", long_pos), ("p2", long_pos), ("p3", long_pos), ("p4", long_pos), ("p5", short_pos),
                   ("s1", long_pos)]}
    mix = SharedMix({"dense": 1, "synthetic": 1}, 2, pairs, FixedScorer(), length_ratio=(0.2, 4.0))
    out = mix(batch)
    kept = {(p, n): (ps, d) for p, n, ps, d, r in zip(out["positive_id"], out["negative_id"], out["positive_score"],
                                                       out["difficulty"], out["reason"]) if r is None}
    # a (0.9) serves p1 and p2 (reuse 2), then d (0.8) serves p3 and p4; p5's positive is too short for any
    # (length ratio), s1 takes c; the synthetic rows are picked per pair: the hardest of s1's own.
    assert set(kept) == {("p1", "a"), ("p2", "a"), ("p3", "d"), ("p4", "d"), ("s1", "c"), ("s1", None)}
    assert kept[("p2", "a")] == (0.7, pytest.approx(1 - (0.7 - 0.9) / 0.7))  # p2's own positive score
    assert kept[("p4", "d")] == (0.5, pytest.approx(1 - (0.5 - 0.8) / 0.5))  # no p4 row survived: scored here
    assert dict(mix.shared) == {"dense": 3}  # rows copied to another positive of the query
    rejected = {(p, n): (rule, json.loads(d)) for p, n, rule, d in zip(out["positive_id"], out["negative_id"],
                                                                      out["rule"], out["details"]) if rule}
    assert rejected[("p1", "b")] == ("over_quota", {"source": "dense", "rank": 4, "used": 0, "reuse": 2})
    assert rejected[("p2", "c")] == ("over_quota", {"source": "dense", "rank": 3, "used": 1, "reuse": 2})
    assert rejected[("s1", None)][0] == "over_quota"
    assert len(out["reason"]) == 6 + 3  # every input row, plus the copies


def test_shared_mix_without_a_reuse_limit_gives_every_positive_the_querys_hardest_survivor():
    from synthgen.negatives.mix import SharedMix

    class FixedScorer:
        def score(self, queries, passages):
            return [0.5] * len(queries)

    pos = "A positive passage of a reasonable length."
    rows = [("p1", "a", 0.9), ("p1", "b", 0.3), ("p2", "c", 0.5)]
    batch = {"query_id": ["q"] * 3, "query": ["Q"] * 3, "positive_id": [r[0] for r in rows], "positive": [pos] * 3,
             "negative": [f"Negative passage {r[1]} of a similar length." for r in rows],
             "negative_id": [r[1] for r in rows], "source": ["dense"] * 3, "negative_score": [r[2] for r in rows],
             "positive_score": [0.6] * 3, "difficulty": [1.5, 0.5, 0.8]}
    pairs = {"q": [(p, pos) for p in ("p1", "p2", "p3")]}
    out = SharedMix({"dense": 1}, None, pairs, FixedScorer())(batch)
    kept = {(p, n) for p, n, r in zip(out["positive_id"], out["negative_id"], out["reason"]) if r is None}
    assert kept == {("p1", "a"), ("p2", "a"), ("p3", "a")}
    rejected = {n: (str(r), json.loads(d)) for n, r, d in zip(out["negative_id"], out["reason"], out["details"]) if r}
    assert rejected["c"] == ("over_quota (source=dense: passage rank 2 of the query, taken by 0 of its positives)",
                             {"source": "dense", "rank": 2, "used": 0, "reuse": None})


def test_a_shared_copy_measures_difficulty_from_the_rows_score_origin():
    """validate.score_origin random: a passage copied to another positive keeps the query's floor as its 0."""
    from synthgen.negatives.mix import SharedMix

    class FixedScorer:
        def score(self, queries, passages):
            return [0.9] * len(queries)

    pos = "A positive passage of a reasonable length."
    batch = {"query_id": ["q"], "query": ["Q"], "positive_id": ["p1"], "positive": [pos],
             "negative": ["Negative passage a of a similar length."], "negative_id": ["a"], "source": ["dense"],
             "negative_score": [0.85], "positive_score": [0.95], "difficulty": [0.5], "score_origin": [0.75]}
    out = SharedMix({"dense": 1}, None, {"q": [("p1", pos), ("p2", pos)]}, FixedScorer())(batch)
    copy = out["positive_id"].index("p2")
    assert out["positive_score"][copy] == 0.9 and out["score_origin"][copy] == 0.75
    assert out["difficulty"][copy] == pytest.approx((0.85 - 0.75) / (0.9 - 0.75))


def test_bm25_on_full_cranfield_excludes_every_judged_passage():
    """10 queries against the full 1,400-passage corpus: no qrels-judged passage comes out, window respected."""
    from synthgen.core.config import InputConfig

    folder = shared_dataset("cranfield")
    icfg = InputConfig(path=str(folder), max_queries=10)
    from synthgen.io.read import load_input

    pairs = load_input(icfg)
    corpus = load_mining_corpus(icfg, pairs)
    assert len(corpus) == 1398  # Cranfield's 1,400 documents less the 2 with empty text (skipped by read)
    cfg = MineConfig(sources={"bm25": 2}, k=2, range_min=2, range_max=50)
    src = MinedSource(BM25Miner(corpus), corpus, cfg)
    out = src(pairs)
    judged = load_qrels(folder)
    assert len(set(pairs["query_id"])) == 10
    assert out["negative_id"] and not any(n in judged.get(q, ()) for q, n in zip(out["query_id"], out["negative_id"]))
    assert src.excluded["positive_id"] > 0  # the judged passages do rank high: exclusion matters
    per_pair = {}
    for q, p, n in zip(out["query_id"], out["positive_id"], out["negative_id"]):
        per_pair.setdefault((q, p), []).append(n)
    assert all(len(v) <= 2 for v in per_pair.values())
    for q in set(out["query_id"]):
        negs = [n for qq, n in zip(out["query_id"], out["negative_id"]) if qq == q]
        assert len(negs) == len(set(negs))  # distinct across the query's positives


def test_mine_run_on_cranfield_subset(mined_run):
    folder, info = mined_run["folder"], mined_run["info"]
    kept = load_from_disk(str(folder / "triplets"))
    rejects = load_from_disk(str(folder / "rejects"))
    counts = info["counts"]
    assert counts["kept"] == len(kept) and counts["rejected"] == len(rejects)
    # mine.pick=shared copies a surviving passage to other positives of its query: those rows are counted
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["shared"] > 0
    assert set(kept["source"]) <= {"bm25", "dense", "random"} and {"bm25", "dense"} <= set(kept["source"])
    assert {s: c["kept"] + c["rejected"] for s, c in counts["per_source"].items()} == {
        s: e["candidates"] + e["shared"] for s, e in info["sources"].items()}
    strategies = {"bm25": "bm25[0:30]", "dense": "dense[0:30]", "random": "random"}
    for row in kept:
        assert row["strategy"] == strategies[row["source"]]
        # With the bi-encoder the miner ranked by, answers_query does not judge mined rows (mined_answers_query
        # auto); near_positive does. Every kept row is scored and has a defined difficulty.
        assert row["negative_id"] is not None and row["negative_score"] is not None and row["difficulty"] is not None
    # At most the configured count per (query, positive) and source.
    per = {}
    for q, p, s in zip(kept["query_id"], kept["positive_id"], kept["source"]):
        per[(q, p, s)] = per.get((q, p, s), 0) + 1
    assert max(per.values()) <= 1
    judged = load_qrels(mined_run["data"])
    assert not any(n in judged.get(q, ()) for q, n in zip(kept["query_id"], kept["negative_id"]))
    assert info["qrels_check"]["judged_relevant_in_kept"] == 0
    assert info["stages"]["mix"]["rejected_by_reason"].get("over_quota", 0) > 0
    assert {r.split(" ")[0] for r in rejects["reason"]} >= {"over_quota"}
    dense = info["sources"]["dense"]
    assert dense["model"] == "all-MiniLM-L6-v2" and dense["cache_hit"] is False
    assert Path(dense["cache_file"]).is_file()
    assert (folder / "README.md").is_file() and json.loads((folder / "run.json").read_text())["kind"] == "mine"


def test_dense_cache_and_exact_neighbours(mined_run, minilm):
    """A second DenseMiner on the same model + corpus loads the cached embeddings; its top hits are the exact ones."""
    from synthgen.core.config import InputConfig

    info = mined_run["info"]
    dense = info["sources"]["dense"]
    cfg = MineConfig(**info["config"]["mine"])
    corpus = load_mining_corpus(InputConfig(path=str(mined_run["data"])), {})
    miner = DenseMiner(minilm, "all-MiniLM-L6-v2", dense["model_ref"], corpus, cfg)
    miner.setup()
    assert miner.cache_hit and miner.encode_seconds == 0.0 and str(miner.cache_file) == dense["cache_file"]
    assert miner.emb.shape[0] == len(corpus) == dense["corpus_docs"]
    query = mined_run["queries"][0]
    top = miner.rank(["q"], [query], 5)[0]
    minilm.max_seq_length = cfg.max_seq_length
    qv = minilm.encode([query], normalize_embeddings=True)
    assert top == np.argsort(-(np.asarray(miner.emb) @ qv[0]))[:5].tolist()
    # Another max_seq_length is another cache entry.
    other = DenseMiner(minilm, "m", dense["model_ref"], corpus, cfg.model_copy(update={"max_seq_length": 32}))
    assert other.cache_key() != miner.cache_key()


def test_synthetic_rows_from_an_earlier_run_join_the_mined_ones(tmp_path):
    from synthgen.negatives.sources import CandidateSources, SyntheticFile

    corpus = _toy_corpus()
    pairs = _pairs("q1", "wing slipstream lift", [("d0", WING)])
    src = tmp_path / "synthetic.jsonl"
    rows = [{"query": "wing slipstream lift", "positive": WING, "negative": f"A made-up passage number {i}.",
             "strategy": "minimal_edit", "template_hash": "abc123", "model": "SmolLM2", "negative_score": 0.5}
            for i in range(3)]
    rows.append({"query": "another query", "positive": "another positive", "negative": "not this pair's"})
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    step = CandidateSources([SyntheticFile(src),
                             MinedSource(BM25Miner(corpus), corpus, MineConfig(sources={"bm25": 1}, k=2))])
    step.setup()
    out = step(pairs)
    assert out["source"] == ["synthetic"] * 3 + ["bm25"] * 2
    assert out["strategy"][:3] == ["minimal_edit"] * 3 and out["template_hash"][0] == "abc123"
    assert out["model"][0] == "SmolLM2" and out["query_id"][:3] == ["q1"] * 3 and out["positive_id"][0] == "d0"
    assert out["negative_score"][0] is None  # scored again by this run's validation
    assert step.rows == {"synthetic": 3, "bm25": 2}
    assert len({len(v) for v in out.values()}) == 1


def test_dense_miner_puts_prompts_before_texts(tmp_path, minilm):
    corpus = Corpus(["a", "b"], ["Rayleigh scattering makes the sky blue.", "Espresso is strong coffee."])
    cfg = MineConfig(sources={"dense": 1}, query_prompt="query: ", passage_prompt="passage: ",
                     cache_dir=str(tmp_path), max_seq_length=64)
    miner = DenseMiner(minilm, "m", "m-ref", corpus, cfg)
    miner.setup()
    minilm.max_seq_length = 64
    expected = minilm.encode(["passage: " + t for t in corpus.texts], normalize_embeddings=True)
    assert np.allclose(np.asarray(miner.emb), expected, atol=1e-5)
    plain = DenseMiner(minilm, "m", "m-ref", corpus, cfg.model_copy(update={"passage_prompt": None}))
    assert plain.cache_key() != miner.cache_key()  # a prompt is another cache entry
    assert miner.rank(["q"], ["why is the sky blue"], 1) == [[0]]
