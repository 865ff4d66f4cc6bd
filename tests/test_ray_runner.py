"""runner: ray runs the same query batches through the same steps as the local runner, on Ray Data workers:
same kept and rejected rows (ids, rules, scores to 1e-5), resumable after kill -9, poisoned rows are rejects."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import load_from_disk

from synthgen.core.config_load import load_config
from synthgen.runners.local import query_batches
from synthgen.runners.ray_runner import batch_numbers
from processes import kill_session, run_resuming_ray_aborts

ray = pytest.importorskip("ray", reason="runner: ray needs `pip install 'synthgen[ray]'` (make install does it)")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_batches_are_the_local_runners_batches():
    qids = ["a", "a", "b", "c", "b", "d", "e", "e"]
    rows = {"query_id": qids, "i": list(range(len(qids)))}
    numbers = batch_numbers(qids, 2)
    local = query_batches(rows, 2)
    assert [sorted(i for i, n in enumerate(numbers) if n == b) for b in range(len(local))] == \
        [sorted(batch["i"]) for batch in local]


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, abs_tol=1e-5)
    return a == b


def same_rows(a: Path, b: Path, name: str) -> int:
    """Rows of two datasets match: every column equal, floats (and the numbers in `details`) to 1e-5."""
    x, y = load_from_disk(str(a / name)), load_from_disk(str(b / name))
    assert x.column_names == y.column_names and len(x) == len(y)
    key = ("query_id", "positive_id", "negative", "stage") if "stage" in x.column_names else (
        "query_id", "positive_id", "negative")
    rx = sorted(x, key=lambda r: tuple(str(r[k]) for k in key))
    ry = sorted(y, key=lambda r: tuple(str(r[k]) for k in key))
    for r1, r2 in zip(rx, ry):
        for col in x.column_names:
            if col == "details" and r1[col]:
                d1, d2 = json.loads(r1[col]), json.loads(r2[col])
                assert d1.keys() == d2.keys() and all(_close(d1[k], d2[k]) for k in d1), (r1, r2)
            elif col != "reason":  # its text shows the same numbers, rounded
                assert _close(r1[col], r2[col]), (col, r1[col], r2[col])
    return len(x)


def both_runners(tmp_path: Path, run, *overrides: str, order=("local", "ray")) -> tuple[Path, Path, dict, dict]:
    folders = {}
    for runner in order:
        cfg = load_config(None, [f"output_dir={tmp_path / runner}", f"runner={runner}", *overrides])
        folders[runner] = run(cfg)
    reports = {r: json.loads((f / "run.json").read_text()) for r, f in folders.items()}
    return folders["local"], folders["ray"], reports["local"], reports["ray"]


def assert_same_run(local: Path, on_ray: Path, a: dict, b: dict) -> None:
    assert same_rows(local, on_ray, "triplets") + same_rows(local, on_ray, "rejects") > 0
    assert a["counts"] == b["counts"]
    strip = {"seconds"}
    assert {k: {f: v for f, v in s.items() if f not in strip} for k, s in a["stages"].items()} == \
        {k: {f: v for f, v in s.items() if f not in strip} for k, s in b["stages"].items()}
    assert (a["runner"]["name"], b["runner"]["name"]) == ("local", "ray")


def test_mine_on_ray_equals_local(tmp_path, ray_cluster):
    from synthgen.commands.mine import mine

    local, on_ray, a, b = both_runners(tmp_path, mine, "batch_queries=3", "mine.sources={dense: 1, bm25: 1}")
    assert_same_run(local, on_ray, a, b)
    # The workers' counters reach the report: passages examined and positives excluded by the miners.
    for src in ("dense", "bm25"):
        for field in ("candidates", "examined", "excluded_positive_id", "kept", "rejected"):
            assert a["sources"][src][field] == b["sources"][src][field] > 0 or field == "rejected"
    assert b["runner"]["batches"] == 7 and b["runner"]["batches_reused"] == 0


def test_generate_on_ray_equals_local(tmp_path, ray_cluster):
    """The real embedded llama.cpp server, started by the driver and shared by the workers. llama.cpp's text
    depends on the order it gets requests in (its prompt cache), so the local run reads the answers the Ray
    workers got, through the shared cache: what must match is everything synthgen does with them."""
    from synthgen.commands.generate import generate

    local, on_ray, a, b = both_runners(tmp_path, generate, "input.max_queries=3", "batch_queries=1",
                                       "llm.max_tokens=96", f"cache_file={tmp_path / 'shared.sqlite'}",
                                       "prompts.strategies=[minimal_edit,topic_near]", order=("ray", "local"))
    assert_same_run(local, on_ray, a, b)
    # The workers asked the server (6 prompts), the local run found every answer in the cache; the LLM
    # accounting adds up the workers' clients.
    assert (b["requests_sent"], b["cache_hits"]) == (6, 0) and (a["requests_sent"], a["cache_hits"]) == (0, 6)
    assert b["llm"]["requests"] >= 6 and b["llm"]["completion_tokens"] > 0


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={out}", "--set", "run_name=r",
            "--set", "runner=ray", "--set", "ray.num_cpus=2", "--set", "batch_queries=1",
            "--set", "input.max_queries=3", "--set", "llm.max_tokens=96",
            "--set", "prompts.strategies=[minimal_edit,topic_near]"]


def _cached(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(str(db), timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM llm").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill9_mid_run_then_rerun_repeats_no_request(tmp_path):
    first_shard = tmp_path / "r" / "shards" / "bq1" / "batch-000000.json"
    proc = subprocess.Popen(_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own session: kill_session finds all of the run
    deadline = time.monotonic() + 900
    while not first_shard.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    kill_session(proc.pid)
    proc.wait()
    cached_before = _cached(tmp_path / "cache.sqlite")
    assert first_shard.exists() and not (tmp_path / "r" / "run.json").exists(), "the kill must land mid-run"
    assert 2 <= cached_before < 6

    # If Ray aborts the rerun (its own bug, see processes.py), that is one more crash to resume from.
    cached = [cached_before]
    again = run_resuming_ray_aborts(_command(tmp_path), lambda: cached.append(_cached(tmp_path / "cache.sqlite")),
                                    timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((tmp_path / "r" / "run.json").read_text())
    assert report["runner"]["batches"] == 3 and report["runner"]["batches_reused"] >= 1
    # Each prompt answered once over all runs: the last run sent only what the runs before had not finished.
    assert report["requests_sent"] == 6 - cached[-1] and _cached(tmp_path / "cache.sqlite") == 6

    # The resumed output is what an uninterrupted local run makes of the same answers.
    local = subprocess.run([sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path / 'clean'}",
                            "--set", f"cache_file={tmp_path / 'cache.sqlite'}", "--set", "run_name=r",
                            "--set", "batch_queries=1", "--set", "input.max_queries=3", "--set", "llm.max_tokens=96",
                            "--set", "prompts.strategies=[minimal_edit,topic_near]"],
                           capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr[-3000:]
    assert json.loads((tmp_path / "clean" / "r" / "run.json").read_text())["requests_sent"] == 0
    same_rows(tmp_path / "r", tmp_path / "clean" / "r", "triplets")
    same_rows(tmp_path / "r", tmp_path / "clean" / "r", "rejects")


def test_poisoned_rows_end_as_rejects_in_both_runners(tmp_path, ray_cluster):
    from synthgen.commands.validate import validate_file

    positive = "Wind tunnel tests of a swept wing show that boundary layer suction delays stall at high lift."
    rows = [
        {"query": "what delays stall on a swept wing", "positive": positive, "negative": ""},
        {"query": "what delays stall on a swept wing", "positive": positive, "negative": "lift " * 200_000},
        {"query": "what delays stall on a swept wing", "positive": positive,
         "negative": "\x00\x01\ufffd\ufffd broken \x7f bytes \x02\ufffd" * 8},  # invalid UTF-8, as decoded
        {"query": "how is drag measured", "positive": positive,
         "negative": "Drag on the model was measured with a strain-gauge balance in the tunnel at several speeds."},
    ]
    src = tmp_path / "poison.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reports = {}
    for runner in ("local", "ray"):
        cfg = load_config(None, [f"runner={runner}", f"output_dir={tmp_path}"])
        reports[runner] = validate_file(cfg, src, tmp_path / runner)
        rejects = load_from_disk(str(tmp_path / runner / "rejects"))
        by_negative = {r["negative"][:20]: r["rule"] for r in rejects}
        assert by_negative.get("") == "empty"
        assert by_negative.get("lift " * 4) == "length_ratio"
        assert any(n.startswith("\x00") for n in by_negative)  # the binary junk is a reject too, not a crash
    assert reports["local"]["counts"]["rejected_by_rule"] == reports["ray"]["counts"]["rejected_by_rule"]
    same_rows(tmp_path / "local", tmp_path / "ray", "rejects")
