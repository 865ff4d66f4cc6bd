"""Issue 17 memory: the corpus read on demand, the chunked BM25 index (bm25s's arrays and top-k exactly, cached
on disk per corpus), and bounded per-run caches."""

import json
import logging

import bm25s
import numpy as np
import pytest

from synthgen.core.config import ScorerConfig
from synthgen.core.package_data import sample_path
from synthgen.io.beir import load_corpus
from synthgen.io.passage_file import PassageFile
from synthgen.negatives import corpus as corpus_mod
from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners import bm25_index
from synthgen.negatives.miners.bm25 import BM25Miner
from synthgen.negatives.miners.bm25_disk import load_retriever
from synthgen.validate import scorer as scorer_mod
from synthgen.validate.dedup import normalise

logging.getLogger("bm25s").setLevel(logging.WARNING)


def _sample_texts() -> list[str]:
    texts = list(load_corpus(sample_path()).values())
    # Edge cases: only stopwords (no tokens), a repeated term, non-ASCII words, a duplicate passage.
    return texts + ["the of and a to", "drag drag drag drag wing", "Überschall-Strömung über Flügel", texts[0]]


@pytest.mark.parametrize("chunk, block", [(3, 5), (1000, 4_000_000)])
def test_bm25_index_equals_bm25s_arrays_and_top_k(tmp_path, monkeypatch, chunk, block):
    monkeypatch.setattr(bm25_index, "CHUNK_DOCS", chunk)
    monkeypatch.setattr(bm25_index, "BLOCK_NNZ", block)
    texts = _sample_texts()
    ref = bm25s.BM25()
    ref.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    folder, hit = bm25_index.cached_index(texts, "fp", tmp_path)
    assert not hit
    for key in ("data", "indices", "indptr"):
        array = np.load(folder / f"{key}.npy")
        np.testing.assert_array_equal(array, ref.scores[key])
        assert array.dtype == ref.scores[key].dtype
    queries = [t[:80] for t in texts] + ["drag wing", "zeppelin", "", "the of"]
    tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
    ref_docs, ref_scores = ref.retrieve(tokens, k=len(texts), show_progress=False)
    for on_disk in (True, False):
        ours = load_retriever(folder, on_disk=on_disk)
        assert ours.vocab_dict == ref.vocab_dict
        docs, scores = ours.retrieve(tokens, k=len(texts), show_progress=False)
        np.testing.assert_array_equal(docs, ref_docs)  # ties included: the same order
        np.testing.assert_array_equal(scores, ref_scores)


def test_bm25_index_is_reused_and_rebuilt_when_the_corpus_changes(tmp_path, monkeypatch):
    texts = _sample_texts()
    first = BM25Miner(Corpus([f"d{i}" for i in range(len(texts))], texts), tmp_path)
    ranks = first.rank(["q"], ["supersonic flow over a wing"], 10)
    assert not first.cache_hit and (first.index_folder / "meta.json").is_file()

    def no_build(*args, **kwargs):
        raise AssertionError("the cached index should have been loaded, not rebuilt")

    monkeypatch.setattr(bm25_index, "build_index", no_build)
    second = BM25Miner(Corpus([f"d{i}" for i in range(len(texts))], list(texts)), tmp_path)
    assert second.rank(["q"], ["supersonic flow over a wing"], 10) == ranks
    assert second.cache_hit and second.index_folder == first.index_folder

    monkeypatch.undo()
    changed = texts[:-1] + ["a passage about supersonic wings that was not there before"]
    third = BM25Miner(Corpus([f"d{i}" for i in range(len(changed))], changed), tmp_path)
    third.setup()
    assert not third.cache_hit and third.index_folder != first.index_folder
    assert len(third.corpus) - 1 in third.rank(["q"], ["supersonic wings not there before"], 3)[0]
    assert not list(tmp_path.glob(".*tmp"))  # no half-built folders left behind


def test_bm25_miner_without_cache_folder_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    texts = _sample_texts()
    miner = BM25Miner(Corpus([f"d{i}" for i in range(len(texts))], texts))
    assert miner.rank(["q"], ["drag wing"], 1) == [[len(texts) - 3]]
    assert list(tmp_path.iterdir()) == []


def test_passage_file_reads_what_the_loader_reads(tmp_path):
    rows = [{"_id": "a", "title": "Wings", "text": "Lift of swept wings."},
            {"_id": "b", "title": "", "text": ""},  # empty: skipped
            {"_id": "a", "title": "", "text": "a duplicate id: the first one wins"},
            {"_id": "c", "title": "", "text": "Größe und Strömung — ünïcode"},
            {"_id": 7, "title": "Heat", "text": "Heat. Transfer in slabs."}]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\ufeff" + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    loaded = load_corpus(tmp_path)
    passages = PassageFile(path)
    assert passages.ids == list(loaded) == ["a", "c", "7"]
    assert list(passages) == list(loaded.values())
    assert passages[-1] == loaded["7"] and passages[0:2] == list(loaded.values())[:2]
    with pytest.raises(IndexError):
        passages[3]
    on_disk, in_memory = Corpus(passages.ids, passages), Corpus(list(loaded), list(loaded.values()))
    assert on_disk.fingerprint == in_memory.fingerprint  # dense caches keyed by it stay valid


def test_normalised_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(corpus_mod, "NORM_CACHE_SIZE", 4)
    texts = [f"Passage, number {i}!" for i in range(20)]
    corpus = Corpus([str(i) for i in range(20)], texts)
    assert [corpus.normalised(i) for i in range(20)] == [normalise(t) for t in texts]
    assert len(corpus._norm) <= 4


def test_scorer_embedding_cache_is_bounded_and_scores_unchanged(minilm, monkeypatch):
    cfg = ScorerConfig(max_length=64)
    pairs = [(f"query {i % 3}", f"passage number {i} about wings") for i in range(30)]
    full = scorer_mod.BiEncoderScorer(minilm, "minilm", cfg)._score_new(pairs)
    monkeypatch.setattr(scorer_mod, "EMB_CACHE_SIZE", 8)
    monkeypatch.setattr(scorer_mod, "SCORE_CACHE_SIZE", 6)
    small = scorer_mod.BiEncoderScorer(minilm, "minilm", cfg)
    got = [s for k in range(0, 30, 5) for s in small._score_new(pairs[k:k + 5])]
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-6)
    assert len(small._emb) <= 8 + 10  # the cap plus one call's texts
    scored = [s for k in range(0, 30, 5) for s in small.score(*zip(*pairs[k:k + 5]))]
    np.testing.assert_allclose(scored, full, rtol=1e-5, atol=1e-6)
    assert len(small._cache) <= 6 + 5


def test_bi_encoder_encodes_many_texts_in_chunks_with_the_same_embeddings(minilm, monkeypatch, caplog):
    cfg = ScorerConfig(max_length=64, batch_size=4)
    texts = [f"passage {i} about wing {'flutter and lift ' * (i % 3)}at speed" for i in range(10)]
    expected = scorer_mod.BiEncoderScorer(minilm, "minilm", cfg).embed(texts)
    monkeypatch.setattr(scorer_mod, "PROGRESS_MIN_TEXTS", 5)
    monkeypatch.setattr(scorer_mod, "PROGRESS_CHUNK", 4)
    monkeypatch.setattr("synthgen.core.progress.is_tty", lambda: False)
    monkeypatch.setattr("synthgen.core.progress.LOG_EVERY_S", 0.0)  # a line per chunk
    with caplog.at_level(logging.INFO, logger="synthgen.core.progress"):
        got = scorer_mod.BiEncoderScorer(minilm, "minilm", cfg).embed(texts)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [r.getMessage() for r in caplog.records] == [
        "scorer: encode (minilm): 4/10 text", "scorer: encode (minilm): 8/10 text",
        "scorer: encode (minilm): 10/10 text (done)"]
