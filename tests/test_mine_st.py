"""Dense mining at sentence-transformers' settings (`mine.deal: same`, exclusion by text identity) gives the
negatives `sentence_transformers.util.mine_hard_negatives` gives, row for row, on real Cranfield passages."""

from sentence_transformers.util import mine_hard_negatives

from synthgen.core.config import InputConfig, MineConfig
from synthgen.io.read import load_input
from synthgen.negatives.corpus import Corpus, load_mining_corpus
from synthgen.negatives.miners.dense import DenseMiner
from synthgen.negatives.sources import MinedSource
from tests.conftest import shared_dataset


def _small_cranfield(n_queries=8, n_other=150, max_positives=None):
    icfg = InputConfig(path=str(shared_dataset("cranfield")), max_queries=n_queries)
    pairs = load_input(icfg)
    if max_positives:  # queries whose positives all fit in the window with distinct negatives
        rows = [i for i, q in enumerate(pairs["query_id"]) if pairs["query_id"].count(q) <= max_positives]
        pairs = {c: [v[i] for i in rows] for c, v in pairs.items()}
    full = load_mining_corpus(icfg, pairs)
    keep = set(pairs["positive_id"])
    chosen = [i for i, d in enumerate(full.ids) if d in keep]
    chosen += [i for i, d in enumerate(full.ids) if d not in keep][:n_other]
    return pairs, Corpus([full.ids[i] for i in chosen], [full.texts[i] for i in chosen])


def _per_pair(queries, positives, negatives):
    out = {}
    for q, p, n in zip(queries, positives, negatives):
        out.setdefault((q, p), []).append(n)
    return out


def test_dense_negatives_equal_sentence_transformers(tmp_path, minilm):
    from datasets import Dataset

    pairs, corpus = _small_cranfield()
    assert max(pairs["query_id"].count(q) for q in pairs["query_id"]) > 1  # several positives per query
    k, range_max = 3, 20
    cfg = MineConfig(sources={"dense": k}, k=k, range_min=0, range_max=range_max, exclude_ratio=100.0,
                     deal="same", max_seq_length=128, batch_size=32, cache_dir=str(tmp_path))
    src = MinedSource(DenseMiner(minilm, "all-MiniLM-L6-v2", "minilm", corpus, cfg), corpus, cfg)
    src.setup()
    ours = src(pairs)

    minilm.max_seq_length = 128
    ds = Dataset.from_dict({"anchor": pairs["query"], "positive": pairs["positive"]})
    st = mine_hard_negatives(ds, minilm, corpus=list(corpus.texts), num_negatives=k, range_max=range_max,
                             sampling_strategy="top", output_format="triplet", batch_size=32, verbose=False)
    want = _per_pair(st["anchor"], st["positive"], st["negative"])
    got = _per_pair(ours["query"], ours["positive"], ours["negative"])
    assert len(got) == len(set(zip(pairs["query"], pairs["positive"]))) and all(len(v) == k for v in got.values())
    assert got == want


def test_round_robin_gives_each_positive_other_negatives(tmp_path, minilm):
    pairs, corpus = _small_cranfield(n_queries=6, n_other=60, max_positives=6)
    cfg = MineConfig(sources={"dense": 2}, k=2, range_max=30, max_seq_length=64, cache_dir=str(tmp_path))
    same = MineConfig(**{**cfg.model_dump(), "deal": "same"})
    rr = MinedSource(DenseMiner(minilm, "m", "m", corpus, cfg), corpus, cfg)(pairs)
    sm = MinedSource(DenseMiner(minilm, "m", "m", corpus, same), corpus, same)(pairs)
    assert len(set(pairs["query_id"])) >= 2
    for q in set(pairs["query_id"]):
        n_pos = pairs["query_id"].count(q)
        rr_negs = [n for qq, n in zip(rr["query_id"], rr["negative_id"]) if qq == q]
        sm_negs = [n for qq, n in zip(sm["query_id"], sm["negative_id"]) if qq == q]
        assert len(rr_negs) == len(sm_negs) == 2 * n_pos
        assert len(set(rr_negs)) == len(rr_negs)  # round robin: distinct across the query's positives
        assert len(set(sm_negs)) == 2  # same: the query's top 2 for every positive
        assert set(sm_negs) <= set(rr_negs)  # the top 2 are dealt first in round robin too
