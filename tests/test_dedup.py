from synthgen.core.config import ValidateConfig
from synthgen.validate.dedup import DedupFilter, normalise

POS = "The Moon is tidally locked to the Earth: it rotates once on its axis in the same time it takes to orbit."


def batch(negatives, qids=None):
    n = len(negatives)
    return {"query_id": qids or ["q1"] * n, "positive": [POS] * n, "negative": negatives}


def test_normalise():
    assert normalise("Hello,  World!\n") == "hello world"


def test_rules_and_reasons():
    negs = [
        "Spring tides occur at new and full moon when the Sun and Moon are aligned.",   # kept
        "spring tides occur at new and full moon, when the sun and moon are aligned!",  # exact after normalising
        "Spring tides occur at new and full moon when the Sun and the Moon are aligned.",  # near duplicate
        POS.replace("Moon", "moon"),                                                    # copy of the positive
        "Tidal power stations capture energy from the rise and fall of the sea.",       # kept
    ]
    reasons = DedupFilter(ValidateConfig())(batch(negs))["reason"]
    assert reasons[0] is None and reasons[4] is None
    assert reasons[1] == "duplicate (of row 0)"
    assert reasons[2].startswith("near_duplicate (ratio=") and reasons[2].endswith("with row 0)")
    assert reasons[3].startswith("copies_positive (ratio=100.0")


def test_groups_are_per_query():
    same = "Neap tides occur at the quarter moons when Sun and Moon pull at right angles."
    reasons = DedupFilter(ValidateConfig())(batch([same, same], qids=["q1", "q2"]))["reason"]
    assert reasons == [None, None]


def test_repeats_count_per_pair_when_a_passage_serves_several_positives():
    x = "Spring tides occur at new and full moon when the Sun and Moon are aligned."
    near_x = "Spring tides occur at new and full moon when the Sun and the Moon are aligned."
    other = "Tidal power stations capture energy from the rise and fall of the sea."
    b = {"query_id": ["q1"] * 5, "positive_id": ["p1", "p2", "p1", "p2", "p2"], "positive": [POS] * 5,
         "negative": [x, x, near_x, x, other]}
    reasons = DedupFilter(ValidateConfig())(b)["reason"]
    assert reasons[0] is None and reasons[1] is None  # one passage, two positives of the query: both kept
    assert reasons[2].startswith("near_duplicate (") and reasons[2].endswith("with row 0)")
    assert reasons[3] == "duplicate (of row 1)" and reasons[4] is None
