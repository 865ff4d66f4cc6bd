"""`synthgen audit`: exact counts on hand-made rows, and the whole command on a crafted corpus."""

import json

import pytest

from synthgen.evaluation.audit.metrics import audit_rows
from synthgen.evaluation.audit.split import make_split

HIDDEN = {"q1": {"h1", "h2"}, "q2": {"h3"}}


def rows(*items):
    cols = ["query_id", "positive_id", "negative", "negative_id", "source", "negative_score", "stage", "reason"]
    return {c: [it.get(c) for it in items] for c in cols}


def test_metrics_exact_counts():
    kept = rows({"query_id": "q1", "positive_id": "p1", "negative": "a", "negative_id": "h1", "source": "dense",
                 "negative_score": 0.5},
                {"query_id": "q1", "positive_id": "p2", "negative": "b", "negative_id": "d9", "source": "dense",
                 "negative_score": 0.3},
                {"query_id": "q2", "positive_id": "p3", "negative": "c", "negative_id": None, "source": "synthetic",
                 "negative_score": 0.4})
    rejected = rows({"query_id": "q1", "positive_id": "p1", "negative": "d", "negative_id": "h2", "source": "dense",
                     "stage": "near_positive", "reason": "near_positive (sim=0.9 ...)"},
                    {"query_id": "q2", "positive_id": "p3", "negative": "e", "negative_id": "d1", "source": "bm25",
                     "stage": "near_positive", "reason": "near_positive (sim=0.8 ...)"},
                    {"query_id": "q2", "positive_id": "p3", "negative": "f", "negative_id": "h3", "source": "bm25",
                     "stage": "mix", "reason": "over_quota (source=bm25: rank 2 > 1)"},
                    {"query_id": "q2", "positive_id": "p3", "negative": "g", "negative_id": None,
                     "source": "synthetic", "stage": "degeneracy", "reason": "meta_talk ('your edit')"})
    out = audit_rows(kept, rejected, HIDDEN, pairs_per_source=4)
    o = out["overall"]
    assert (o["kept"], o["kept_mined"], o["kept_false_negatives"], o["fn_rate"]) == (3, 2, 1, 0.5)
    # distinct hidden positives among judged candidates: h1 (kept), h2 (caught); h3 was dropped by a quota
    assert (o["hidden_in_candidates"], o["caught"], o["catch_rate"]) == (2, 1, 0.5)
    assert (o["pairs_with_negative"], o["pair_yield"]) == (3, 0.75)
    assert out["rules"]["near_positive"] == {"fired": 2, "fired_mined": 2, "hidden_positives": 1, "precision": 0.5}
    assert out["rules"]["over_quota"]["precision"] == 1.0
    assert out["rules"]["meta_talk"] == {"fired": 1, "fired_mined": 0, "hidden_positives": 0, "precision": None}
    assert out["base_rate"] == 0.6  # 3 of the 5 mined candidates are hidden positives
    assert out["degeneracy"] == {"meta_talk": 1}
    assert out["per_source"]["dense"]["fn_rate"] == 0.5 and out["per_source"]["bm25"]["kept"] == 0
    # With the pipeline's stage order, each rule is also judged against the rows that reached its stage.
    staged = audit_rows(kept, rejected, HIDDEN, 4, ["degeneracy", "near_positive", "mix"])["rules"]
    assert staged["near_positive"]["base_rate_reached"] == 0.6  # all 5 mined rows reach it, 3 hidden
    assert staged["over_quota"]["base_rate_reached"] == 0.6667  # h1, d9 (kept) and h3: 2 of 3
    assert "base_rate_reached" not in out["rules"]["near_positive"]


TOPICS = {
    "vitamin": ("How does winter affect vitamin D levels?", [
        "Vitamin D deficiency is common in winter at northern latitudes because the skin makes less of it.",
        "Low vitamin D levels are frequent in people who get little sunlight during the winter months.",
        "Sun exposure is the main source of vitamin D, so deficiency rises in the dark months of winter.",
        "Blood levels of vitamin D fall in winter and recover in summer, following the hours of sunlight.",
    ]),
    "tides": ("Why are there two high tides every day?", [
        "Ocean tides are raised by the Moon's gravity, which pulls two bulges of water around the Earth.",
        "Most coasts see two high tides a day because the Earth turns under the two tidal bulges of the sea.",
        "The Moon and the Sun pull on the oceans, and the rotating Earth carries coasts through two bulges daily.",
        "Semidiurnal tides, two highs and two lows each day, come from the Moon's pull on the rotating oceans.",
    ]),
}
OTHERS = [
    "Espresso is brewed by forcing hot water at high pressure through finely ground coffee beans.",
    "A football match has two halves of forty-five minutes and is played by two teams of eleven.",
    "Python lists can grow and shrink, and they keep their items in the order they were added to them.",
    "Sourdough bread rises thanks to wild yeast and lactic bacteria living in a fermented starter culture.",
    "The violin has four strings tuned in fifths and is usually played with a bow strung with horsehair.",
    "Granite is an igneous rock that forms when magma cools slowly deep below the surface of the Earth.",
    "Chess openings such as the Sicilian Defence are studied by players to gain an early advantage.",
    "Tulips were traded at extraordinary prices in the Netherlands during the seventeenth century.",
]


def crafted_beir(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs, qrels, queries = [], [], []
    for qn, (topic, (query, passages)) in enumerate(TOPICS.items(), 1):
        queries.append({"_id": f"q{qn}", "text": query})
        for i, text in enumerate(passages):
            docs.append({"_id": f"{topic}{i}", "title": "", "text": text})
            qrels.append(f"q{qn}\t{topic}{i}\t1")
    docs += [{"_id": f"other{i}", "title": "", "text": t} for i, t in enumerate(OTHERS)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n")
    return folder


def test_split_hides_a_seeded_share(tmp_path):
    folder = crafted_beir(tmp_path)
    a = make_split(folder, "train", 4, 0.5, None, seed=1)
    b = make_split(folder, "train", 4, 0.5, None, seed=1)
    assert a == b and a.as_dict() == {"queries": 2, "visible_pairs": 4, "hidden_positives": 4}
    for q in a.queries:
        assert not a.hidden[q] & set(a.visible[q]) and len(a.hidden[q]) == 2
    with pytest.raises(Exception, match="5 or more positives"):
        make_split(folder, "train", 5, 0.5, None, seed=1)


def test_audit_command_on_a_crafted_corpus(tmp_path, capsys):
    from datasets import load_from_disk

    from synthgen.cli import main

    folder = crafted_beir(tmp_path)
    rc = main(["audit", "--set", f"input.path={folder}", "--set", f"output_dir={tmp_path / 'out'}",
               "--set", "mine.sources={random: 1}", "--set", "mine.k=8", "--set", "mine.cache_dir=" + str(tmp_path / "emb"),
               "--independent-sample", "0"])
    assert rc == 0
    out_folder = next((tmp_path / "out").glob("audit-beir-*"))
    result = json.loads((out_folder / "audit.json").read_text())
    assert (out_folder / "audit.md").is_file() and (out_folder / "audit.png").stat().st_size > 1000
    hidden = {q: set(v) for q, v in json.loads((out_folder / "hidden.json").read_text()).items()}
    # Recount from the run folder itself: kept negatives that are hidden positives.
    kept = load_from_disk(str(out_folder / "mine" / "triplets")).to_dict()
    fn = sum(n in hidden[q] for q, n in zip(kept["query_id"], kept["negative_id"]))
    o = result["synthgen"]["overall"]
    assert o["kept"] == len(kept["negative"]) and o["kept_false_negatives"] == fn
    # Every passage but the visible positives is a random candidate (k=8 covers them): all 4 hidden ones are in.
    rejected = load_from_disk(str(out_folder / "mine" / "rejects")).to_dict()
    in_candidates = {(q, n) for q, n in zip(kept["query_id"] + rejected["query_id"],
                                            kept["negative_id"] + rejected["negative_id"]) if n in hidden[q]}
    assert len(in_candidates) == 4 == o["hidden_in_candidates"]
    # The on-topic passages the pipeline cannot see look like the visible ones: near_positive catches them.
    assert result["synthgen"]["rules"]["near_positive"]["hidden_positives"] >= 3 and fn <= 1
    # ST with no margin takes each query's most similar non-positive: a hidden positive, for every pair.
    st = result["st_sweep"]["ranks 0-100"]
    assert st["kept"] == 4 and st["kept_false_negatives"] == 4 and st["pair_yield"] == 1.0
    assert "synthgen (this config)" in capsys.readouterr().out


def test_st_baseline_mines_as_many_negatives_per_pair_as_synthgen_keeps(tmp_path):
    """The ST rows of the audit are comparable: with two negatives per pair in synthgen, ST is asked for two."""
    from synthgen.cli import main

    folder = crafted_beir(tmp_path)
    rc = main(["audit", "--set", f"input.path={folder}", "--set", f"output_dir={tmp_path / 'out'}",
               "--set", "mine.sources={random: 2}", "--set", "mine.k=8",
               "--set", "mine.cache_dir=" + str(tmp_path / "emb"),
               "--independent-sample", "0"])
    assert rc == 0
    result = json.loads(next((tmp_path / "out").glob("audit-beir-*")).joinpath("audit.json").read_text())
    st = result["st_sweep"]["ranks 0-100"]
    assert st["settings"]["num_negatives"] == 2
    assert st["kept"] == 8 and st["pair_yield"] == 1.0  # 4 visible pairs, 2 negatives each
