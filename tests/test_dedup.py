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


# ------------------------------------------------------------------ decisions equal a plain pairwise loop
import random  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from rapidfuzz import fuzz  # noqa: E402

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def reference_normalise(text):
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


def reference_dedup(batch, cfg, positives_by_query):
    """The rules spelled out: one fuzz.ratio call per pair, no bounds, no batching."""
    reasons = [None] * len(batch["negative"])
    pair_col = batch["positive_id"] if batch.get("positive_id") else batch["positive"]
    groups = {}
    for i, q in enumerate(batch["query_id"]):
        groups.setdefault(q, []).append(i)
    for qid, rows in groups.items():
        known = [reference_normalise(p) for p in positives_by_query.get(qid, []) + [batch["positive"][i] for i in rows]]
        kept = []
        for k, i in enumerate(rows):
            neg = reference_normalise(batch["negative"][i])
            earlier = [rows[j] for j in range(k) if pair_col[rows[j]] == pair_col[i]
                       and reference_normalise(batch["negative"][rows[j]]) == neg]
            to_pos = max(fuzz.ratio(neg, p) for p in known)
            if earlier:
                reasons[i] = f"duplicate (of row {earlier[0]})"
            elif to_pos >= cfg.positive_copy:
                reasons[i] = f"copies_positive (ratio={to_pos:.1f})"
            else:
                for j in kept:
                    r = fuzz.ratio(neg, reference_normalise(batch["negative"][j]))
                    if pair_col[j] == pair_col[i] and r >= cfg.near_duplicate:
                        reasons[i] = f"near_duplicate (ratio={float(np.float32(r)):.1f} with row {j})"
                        break
            if reasons[i] is None:
                kept.append(i)
    return reasons


ALPHABET = list("abcdefgh ijk,.!_-") + ["é", "İ", "ß", "Σ", "中", "\u00a0", "\t", "😀"]


def _random_batch(rng):
    def text():
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, rng.choice([5, 30, 120]))))

    def edit(t):
        t = list(t)
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            if op < 0.4 and t:
                t[rng.randrange(len(t))] = rng.choice(ALPHABET)
            elif op < 0.7:
                t.insert(rng.randint(0, len(t)), rng.choice(ALPHABET))
            elif t:
                del t[rng.randrange(len(t))]
        s = "".join(t)
        return s.upper() if rng.random() < 0.1 else s

    batch = {"query_id": [], "positive_id": [], "positive": [], "negative": []}
    by_query = {}
    for q in range(rng.randint(1, 4)):
        positives = [text() for _ in range(rng.randint(1, 3))]
        pool = [text() for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.5:
            by_query[f"q{q}"] = [edit(p) for p in positives]
        for _ in range(rng.randint(1, 25)):
            p = rng.randrange(len(positives))
            src = rng.choice(pool + positives)  # exact repeats, near-copies and copies of positives
            batch["query_id"].append(f"q{q}")
            batch["positive_id"].append(f"p{q}.{p}")
            batch["positive"].append(positives[p])
            batch["negative"].append(edit(src) if rng.random() < 0.7 else src)
    if rng.random() < 0.3:
        del batch["positive_id"]  # pairs keyed by positive text
    return batch, by_query


@pytest.mark.parametrize("seed", range(4))
def test_decisions_equal_the_pairwise_loop(seed):
    rng = random.Random(seed)
    checked = rejected = 0
    for _ in range(60):
        cfg = ValidateConfig(near_duplicate=rng.choice([0.0, 50.0, 80.0, 85.0, 90.0, 97.5, 100.0]),
                             positive_copy=rng.choice([60.0, 95.0, 100.0]))
        batch, by_query = _random_batch(rng)
        got = DedupFilter(cfg, by_query).decide(batch)
        assert [None if r is None else str(r) for r in got] == reference_dedup(batch, cfg, by_query)
        checked += len(got)
        rejected += sum(r is not None for r in got)
    assert 0 < rejected < checked  # the batches exercise both outcomes


def test_normalise_equals_the_regex_one_on_every_code_point():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    joined = "a" + "b".join(chars) + "c"  # every character between two letters, in one string
    assert normalise(joined) == reference_normalise(joined)
    rng = random.Random(0)
    for _ in range(2000):
        s = "".join(rng.choice(chars[:0x3000] + ["_", " ", "\t", "İ", "ß", "Σ"]) for _ in range(rng.randint(0, 30)))
        assert normalise(s) == reference_normalise(s)
    for s in (None, "", "  ", "a_b", "x\u0130y", "ΣΑΣ", "\u2028a\u00a0b"):
        assert normalise(s) == reference_normalise(s)


def test_bounds_never_skip_a_pair_that_reaches_the_threshold():
    from synthgen.validate.pair_bounds import char_histograms, near_pair_candidates

    rng = random.Random(1)
    texts = ["".join(rng.choice("abcde é中") for _ in range(rng.randint(0, 40))) for _ in range(150)]
    texts = list(dict.fromkeys(texts))
    ids = np.arange(len(texts))
    lengths = np.array([len(t) for t in texts])
    for t in (0.0, 40.0, 70.0, 90.0):
        kk, jj = near_pair_candidates(ids, lengths, char_histograms(texts), np.zeros(len(texts), np.int64), t)
        got = set(zip(kk.tolist(), jj.tolist()))
        want = {(k, j) for k in range(len(texts)) for j in range(k) if fuzz.ratio(texts[k], texts[j]) >= t}
        assert want <= got
        assert t == 0.0 or len(got) < len(texts) * (len(texts) - 1) // 2  # and they do skip some


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
