import json

import pytest

from synthgen.core.package_data import default_prompts_dir
from synthgen.llm.backend import Backend
from synthgen.llm.generate import GenerateStep
from synthgen.llm.prompt import PromptError, PromptStep, load_templates, parse_template
from synthgen.negatives.edit import answer_removed_variants, remove_answer_sentences, split_sentences
from synthgen.validate.scorer import Scorer


class WordScorer(Scorer):
    """Score = shared words with the query: a transparent stand-in to test the editing arithmetic."""

    def _score_new(self, pairs):
        return [float(len(set(q.lower().split()) & set(p.lower().rstrip(".").split()))) for q, p in pairs]


POS = ("Queen bee lifespan. A queen honeybee can live for three to five years. "
       "She mates early in life and lays eggs all summer long in the hive.")


def test_split_sentences():
    assert split_sentences("One two. Three four! \"Five\" six? 7 is. e.g. lower") == [
        "One two.", "Three four!", "\"Five\" six?", "7 is. e.g. lower"]
    # Tokenised, lower-cased text (Cranfield) marks sentence ends with a free-standing period.
    assert split_sentences("wing in a slipstream . an experimental study was made . it worked") == [
        "wing in a slipstream .", "an experimental study was made .", "it worked"]


def test_removes_the_answer_sentence_not_the_title():
    (out,) = remove_answer_sentences(["how long can a queen honeybee live"], [POS], WordScorer())
    assert out == "Queen bee lifespan. She mates early in life and lays eggs all summer long in the hive."


def test_nothing_left_is_none():
    assert remove_answer_sentences(["queen"], ["A queen honeybee can live for years."], WordScorer()) == [None]


LONG_POS = ("Honeybee castes. A queen honeybee can live for three to five years in a hive. "
            "Worker honeybee adults live for about six weeks in summer. "
            "Drones die after mating with a queen in flight. The colony overwinters as a cluster of bees.")


def test_variants_cut_one_more_ranked_sentence_each():
    q = "how long can a queen honeybee live"
    (variants,) = answer_removed_variants([q], [LONG_POS], WordScorer(), max_variants=3)
    # WordScorer ranks: the queen's lifespan (5 shared words) > workers (2) = drones (2; a tie keeps text order)
    # > the colony (1); each variant removes the next one; the short title is never removed.
    s = split_sentences(LONG_POS)
    assert variants == [" ".join([s[0], s[2], s[3], s[4]]), " ".join([s[0], s[3], s[4]]), " ".join([s[0], s[4]])]
    assert variants[0] == remove_answer_sentences([q], [LONG_POS], WordScorer())[0]
    assert answer_removed_variants([q], [LONG_POS], WordScorer(), max_variants=1) == [variants[:1]]
    # Never down to the title alone: POS has two long sentences, so one cut is the most there can be.
    (two,) = answer_removed_variants(["how long can a queen honeybee live"], [POS], WordScorer(), max_variants=3)
    assert two == ["Queen bee lifespan. She mates early in life and lays eggs all summer long in the hive."]
    assert answer_removed_variants(["queen"], ["A queen honeybee can live for years."], WordScorer()) == [[]]


def test_prompt_step_gives_n_variants_as_candidates():
    templates = load_templates(default_prompts_dir(), ["answer_removed"])
    rows = PromptStep(templates, 2, WordScorer())({"query_id": ["a"], "query": ["how long can a queen honeybee live"],
                                                    "positive_id": ["p"], "positive": [LONG_POS]})
    out = GenerateStep(NoCalls())(rows)
    assert out["negative"] == answer_removed_variants(["how long can a queen honeybee live"], [LONG_POS],
                                                      WordScorer(), 2)[0]
    assert len(set(out["negative"])) == 2 and out["reason"] == [None, None]


def test_prompt_step_marks_not_applicable_rows(tmp_path):
    templates = load_templates(default_prompts_dir(), ["answer_removed"])
    step = PromptStep(templates, 1, WordScorer())
    out = step({"query_id": ["a", "b"], "query": ["how long can a queen honeybee live", "queen"],
                "positive_id": ["p", "q"], "positive": [POS, "A queen honeybee can live for years."]})
    assert out["engine"] == ["template", "template"]
    assert out["reason"][0] is None and out["reason"][1].startswith("not_applicable (answer_removed")
    assert json.loads(json.loads(out["messages"][0])[-1]["content"])["passages"][0].startswith("Queen bee lifespan.")


class NoCalls(Backend):
    model = "never"

    def complete(self, prompts, on_result=None):
        raise AssertionError("a template-engine strategy must not call the LLM")


def test_template_engine_rows_bypass_the_llm():
    templates = load_templates(default_prompts_dir(), ["answer_removed"])
    rows = PromptStep(templates, 1, WordScorer())({"query_id": ["a"], "query": ["how long can a queen honeybee live"],
                                                    "positive_id": ["p"], "positive": [POS]})
    out = GenerateStep(NoCalls())(rows)
    assert out["negative"] == ["Queen bee lifespan. She mates early in life and lays eggs all summer long in the hive."]
    assert out["model"] == ["template"] and out["reason"] == [None]


def test_six_strategies_with_taxonomy():
    templates = load_templates(default_prompts_dir())
    assert len(templates) >= 6
    for t in templates:
        assert t.meta.get("taxonomy", "").startswith("synthetic"), t.name
    assert {"minimal_edit", "scorer_guided_edit", "answer_removed", "sibling_question"} <= {t.name for t in templates}


@pytest.mark.parametrize("header, message", [
    ("engine: gpu", "engine must be 'llm' or 'template'"),
    ("needs: [magic]", "unknown computed variable 'magic'"),
])
def test_bad_engine_or_needs(tmp_path, header, message):
    p = tmp_path / "x.j2"
    p.write_text(f"{{#\nname: x\ndescription: d\nstrategy: s\n{header}\n#}}\nbody")
    with pytest.raises(PromptError, match=message):
        parse_template(p)
