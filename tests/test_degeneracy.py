"""The degeneracy gate: real strings a 135M model wrote in place of passages, one reason each."""

import pytest

from synthgen.validate.degeneracy import DegeneracyFilter, degeneracy_reason, repetition_share

# Kept by the pre-gate validation of a default `make generate` (issue 12): none is a passage.
SEEN_KEPT = [
    "...} }\n\nYour answer is: The original passage has been removed. Your edit was not requested...",
    "This question is answered in two sentences with the code: JSON_208354679,",
    "// this is a single sentence, so no need to keep it in the same format. The passage continues with another idea...",
]
PROSE = ("Zinc is an essential trace element. Deficiency impairs immune function and wound healing, and "
         "supplementation shortens the duration of common colds in some trials.")


@pytest.mark.parametrize("text", SEEN_KEPT)
def test_seen_garbage_is_rejected(text):
    assert degeneracy_reason(text) is not None


@pytest.mark.parametrize("text,rule", [
    ("I have removed the sentence about dosage so the passage no longer answers it. Zinc is a trace element.",
     "meta_talk"),
    ("Note: the following passage avoids the answer. Zinc is a mineral found in meat.", "meta_talk"),
    # Kept by a default `make generate` before these rules existed (SmolLM2-135M, sample corpus):
    ("This re-write has removed the last two paragraphs.", "meta_talk"),
    ("./Hotspots. Hotspot volcanoes form over plates that are not at plate boundaries, rather than where they meet.",
     "code_fragment"),
    ("Zinc is found in oysters and red meat; {\"passages\": [\"Zinc is a metal.\"]} and more text here.",
     "code_fragment"),
    ("Zinc is found in oysters and red meat. return passages_list[0] is what the loader does.", "code_fragment"),
    ("zinc levels zinc levels zinc levels zinc levels zinc levels zinc levels zinc levels in the blood.",
     "repetition"),
    ("1.2 3.4 5.6 7.8 9.0 1.2 3.4 5.6 7.8 9.0 -- 11 12 13 14 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 ok.",
     "non_prose"),
    ("Zinc is an essential trace element and its deficiency impairs immune function and wound", "truncated"),
    ("Zinc is an essential trace element and its deficiency impairs immune function...", "truncated"),
])
def test_each_rule_has_its_reason(text, rule):
    reason = degeneracy_reason(text)
    assert reason is not None and reason.split(" ")[0] == rule, reason


def test_prose_passes_and_repetition_is_low():
    assert degeneracy_reason(PROSE) is None
    assert repetition_share(PROSE) == 0.0


def test_filter_checks_llm_rows_only():
    batch = {"negative": [SEEN_KEPT[0], SEEN_KEPT[0], PROSE], "negative_id": [None, "doc7", None]}
    reasons = DegeneracyFilter().decide(batch)
    assert reasons[0].startswith("meta_talk") and reasons[1] is None and reasons[2] is None
