"""`synthgen compare`: paired tests across eval runs, from per_query.json files, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthgen.core.errors import LoaderError
from synthgen.evaluation.compare_runs import compare_specs, format_rows, load_condition
from synthgen.evaluation.stats import compare_conditions


def _write_run(folder, conditions: dict, queries=("q1", "q2", "q3", "q4"), dev: dict | None = None):
    folder.mkdir(parents=True)
    stored = {"test": {"query_ids": list(queries), "conditions": conditions}}
    if dev:
        stored["dev"] = {"query_ids": ["d1", "d2", "d3"], "conditions": dev}
    (folder / "per_query.json").write_text(json.dumps(stored))
    return folder


def test_compare_pairs_conditions_from_two_runs(tmp_path):
    base_runs = [[0.1, 0.5, 0.3, 0.2], [0.2, 0.4, 0.3, 0.1]]
    new_runs = [[0.3, 0.6, 0.4, 0.3], [0.4, 0.5, 0.5, 0.2], [0.3, 0.7, 0.4, 0.3]]
    _write_run(tmp_path / "a" / "cranfield", {"dense": base_runs},
               dev={"dense": [[0.1, 0.2, 0.3]] * 2})
    _write_run(tmp_path / "b" / "cranfield", {"mine+inbatch-kl": new_runs},
               dev={"mine+inbatch-kl": [[0.2, 0.2, 0.4]] * 3})
    rows = compare_specs(f"{tmp_path / 'a'}:dense", [f"{tmp_path / 'b' / 'cranfield'}:mine+inbatch-kl"])
    assert [r["split"] for r in rows] == ["test", "dev"]
    test = rows[0]
    seed_means = [np.mean(r) for r in new_runs]
    assert test["mean"] == pytest.approx(np.mean(seed_means)) and test["seeds"] == 3 and test["baseline_seeds"] == 2
    assert test["delta"] == pytest.approx(np.mean(seed_means) - np.mean([np.mean(r) for r in base_runs]))
    assert test == {**compare_conditions(new_runs, base_runs), "condition": test["condition"],
                    "baseline": test["baseline"], "split": "test"}
    assert rows[1]["delta"] == pytest.approx(0.2 / 3) and rows[1]["queries"] == 3
    only_dev = compare_specs(f"{tmp_path / 'a'}:dense", [f"{tmp_path / 'b'}:mine+inbatch-kl"], ("dev",))
    assert [r["split"] for r in only_dev] == ["dev"]
    table = format_rows(rows).splitlines()
    assert len(table) == 4 and "| test (4 q) |" in table[2] and f"{test['delta']:+.4f}" in table[2]


def test_compare_refuses_what_cannot_be_paired(tmp_path):
    _write_run(tmp_path / "a", {"dense": [[0.1, 0.2, 0.3, 0.4]]})
    _write_run(tmp_path / "other-data", {"dense": [[0.1, 0.2, 0.3]]}, queries=("x1", "x2", "x3"))
    with pytest.raises(LoaderError, match="RUN:CONDITION"):
        load_condition(str(tmp_path / "a"))
    with pytest.raises(LoaderError, match="no condition 'mine'; it has dense"):
        load_condition(f"{tmp_path / 'a'}:mine")
    with pytest.raises(LoaderError, match="no per_query.json"):
        load_condition(f"{tmp_path / 'missing'}:dense")
    with pytest.raises(LoaderError, match="different test queries"):
        compare_specs(f"{tmp_path / 'a'}:dense", [f"{tmp_path / 'other-data'}:dense"])
    _write_run(tmp_path / "two" / "cranfield", {"dense": [[0.1] * 4]})
    _write_run(tmp_path / "two" / "nfcorpus", {"dense": [[0.1] * 4]})
    with pytest.raises(LoaderError, match="several eval datasets \\(cranfield, nfcorpus\\)"):
        load_condition(f"{tmp_path / 'two'}:dense")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "per_query.json").write_text("{not json")
    with pytest.raises(LoaderError, match="unreadable"):
        load_condition(f"{tmp_path / 'bad'}:dense")


def _meta(folder, seeds, **settings):
    meta = {"dataset": "cranfield", "seeds": seeds, "steps": 132, "loss": "inbatch-kl", "lr": 2e-05,
            "scorer": {"name": "MiniLM", "scored": len(seeds)}, "seconds": 10.0 * len(seeds),
            "config": {"cache_file": str(folder / "c.sqlite"), "mine": {"reuse": None, "cache_dir": str(folder)}},
            **settings}
    (folder / "meta.json").write_text(json.dumps(meta))


def test_runs_of_one_condition_with_other_seeds_pool_into_one(tmp_path):
    """`RUN1,RUN2:CONDITION`: seeds 42-44 and a later 45-46 of the same experiment are one five-seed condition; what
    each run cost and where its cache was do not matter, any setting or a shared seed does."""
    base = [[0.1, 0.5, 0.3, 0.2]] * 5
    first, later = [[0.3, 0.6, 0.4, 0.3], [0.4, 0.5, 0.5, 0.2], [0.3, 0.7, 0.4, 0.3]], [[0.2, 0.6, 0.4, 0.1]] * 2
    _meta(_write_run(tmp_path / "a", {"mine": first, "dense": base[:3]}), [42, 43, 44])
    _meta(_write_run(tmp_path / "b", {"mine": later, "dense": base[:2]}), [45, 46], kl_weight=1.0)
    label, pooled = load_condition(f"{tmp_path / 'a'},{tmp_path / 'b'}:mine")
    assert pooled["test"]["runs"] == first + later and label == f"{tmp_path / 'a'},{tmp_path / 'b'}:mine"
    _write_run(tmp_path / "base", {"dense": base})
    row = compare_specs(f"{tmp_path / 'base'}:dense", [f"{tmp_path / 'a'},{tmp_path / 'b'}:mine"])[0]
    assert row["seeds"] == 5 and row == {**compare_conditions(first + later, base), "condition": label,
                                         "baseline": f"{tmp_path / 'base'}:dense", "split": "test"}
    _meta(_write_run(tmp_path / "again", {"mine": later}), [44, 45])
    with pytest.raises(LoaderError, match="a seed is in more than one run"):
        load_condition(f"{tmp_path / 'a'},{tmp_path / 'again'}:mine")
    _meta(_write_run(tmp_path / "other", {"mine": later}), [47], steps=88)
    with pytest.raises(LoaderError, match="differ in 'steps' \\(132, 88\\)"):
        load_condition(f"{tmp_path / 'a'},{tmp_path / 'other'}:mine")
    _meta(_write_run(tmp_path / "reuse", {"mine": later}), [48], config={"mine": {"reuse": 1}})
    with pytest.raises(LoaderError, match="differ in 'config.mine.reuse'"):
        load_condition(f"{tmp_path / 'a'},{tmp_path / 'reuse'}:mine")
    _write_run(tmp_path / "fewer", {"mine": later}, queries=("q1", "q2", "q3"))
    _meta(tmp_path / "fewer", [49])
    with pytest.raises(LoaderError, match="different test queries"):
        load_condition(f"{tmp_path / 'a'},{tmp_path / 'fewer'}:mine")
    _write_run(tmp_path / "no-meta", {"mine": later})
    with pytest.raises(LoaderError, match="meta.json is missing"):
        load_condition(f"{tmp_path / 'a'},{tmp_path / 'no-meta'}:mine")


def test_compare_cli_prints_json_and_fails_clearly(tmp_path, capsys):
    from synthgen.cli import main

    _write_run(tmp_path / "a", {"dense": [[0.1, 0.2, 0.3, 0.4]], "mine": [[0.3, 0.3, 0.5, 0.6]]})
    assert main(["compare", f"{tmp_path / 'a'}:dense", f"{tmp_path / 'a'}:mine", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["delta"] == pytest.approx(0.175) and rows[0]["split"] == "test"
    assert main(["compare", f"{tmp_path / 'a'}:dense", f"{tmp_path / 'a'}:nope"]) != 0
    assert "no condition 'nope'" in capsys.readouterr().err
