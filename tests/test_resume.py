"""Crash safety with real processes: SIGKILL mid-run, rerun, nothing lost, nothing sent twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from datasets import load_from_disk

QUERIES, STRATEGIES = 3, 2
PROMPTS = QUERIES * STRATEGIES


def command(out):
    return [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={out}", "--set", "run_name=r",
            "--set", f"input.max_queries={QUERIES}", "--set", "llm.max_tokens=96", "--set", "llm.concurrency=2",
            "--set", "prompts.strategies=[minimal_edit,topic_near]"]


def cached_results(folder):
    db = folder.parent / "cache.sqlite"  # the output folder's shared cache
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(str(db), timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM llm").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def run_to_end(out):
    proc = subprocess.run(command(out), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "r" / "run.json").read_text())


def rows(ds):
    return sorted(json.dumps(r, sort_keys=True) for r in ds)


def test_kill9_then_resume(tmp_path):
    folder = tmp_path / "r"
    proc = subprocess.Popen(command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while cached_results(folder) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = cached_results(folder)
    assert 2 <= done_before < PROMPTS, "the kill must land mid-run"
    assert not (folder / "triplets").exists() and not (folder / "run.json").exists()

    second = run_to_end(tmp_path)
    # Nothing sent twice: what the killed run finished is read back, only the rest is sent.
    assert second["cache_hits"] == done_before
    assert second["requests_sent"] == PROMPTS - done_before
    counts = second["counts"]
    assert counts["prompts"] == PROMPTS and counts["kept"] + counts["rejected"] == counts["candidates"]
    triplets, rejects = load_from_disk(str(folder / "triplets")), load_from_disk(str(folder / "rejects"))
    # Every input query is accounted for (kept, rejected or failed), every prompt exactly once.
    prompts_seen = {(r["query_id"], r["strategy"]) for ds in (triplets, rejects) for r in ds}
    assert len(prompts_seen) == PROMPTS
    assert len(set(json.dumps(r, sort_keys=True) for r in triplets)) == len(triplets)  # no duplicate rows

    third = run_to_end(tmp_path)
    assert third["requests_sent"] == 0 and third["cache_hits"] == PROMPTS
    assert rows(load_from_disk(str(folder / "triplets"))) == rows(triplets)
    assert rows(load_from_disk(str(folder / "rejects"))) == rows(rejects)


def port_open(port):
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_keeps_what_arrived_and_stops_the_server(tmp_path):
    import re

    folder = tmp_path / "r"
    proc = subprocess.Popen(command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while cached_results(folder) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "synthgen: interrupted" in err and "Traceback" not in err
    # the embedded server it started is stopped, not left holding its port
    port = int(re.search(r"starting .* on 127\.0\.0\.1:(\d+)", err).group(1))
    assert "stopped" in err and not port_open(port)
    kept = cached_results(folder)
    assert 2 <= kept < PROMPTS, "the interrupt must land mid-run"
    assert not (folder / "triplets").exists() and not (folder / "run.json").exists()

    second = run_to_end(tmp_path)
    # every result that arrived before the interrupt is reused; only the rest is sent
    assert second["cache_hits"] == kept and second["requests_sent"] == PROMPTS - kept


def test_kill9_during_the_final_write_then_rerun(llama_server, tmp_path):
    """SIGKILL while triplets/ and rejects/ are being written: no half dataset is left looking finished,
    and the rerun writes the complete outputs from the cache."""
    cmd = [sys.executable, "-m", "synthgen", "generate", "--set", f"output_dir={tmp_path}", "--set", "run_name=w",
           "--set", "prompts.strategies=[answer_removed]", "--set", f"llm.base_url={llama_server.base_url}",
           "--set", f"llm.model={llama_server.model_name}"]
    folder = tmp_path / "w"
    marks = [folder / n for n in (".triplets.tmp", ".rejects.tmp", ".triplets.old", ".rejects.old")]
    killed = False
    for _ in range(5):  # the write takes a fraction of a second: retry until the kill lands inside it
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not any(m.exists() for m in marks):
            time.sleep(0.001)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
            break
        for sub in ("triplets", "rejects", "run.json"):  # it finished first: start over
            path = folder / sub
            if path.is_dir():
                import shutil

                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    assert killed, "the kill never landed inside the final write"
    assert not (folder / "run.json").exists()
    for name in ("triplets", "rejects"):  # either absent or a complete dataset, never a partial one
        if (folder / name).exists():
            load_from_disk(str(folder / name))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((folder / "run.json").read_text())
    counts = info["counts"]
    assert counts["kept"] == len(load_from_disk(str(folder / "triplets")))
    assert counts["rejected"] == len(load_from_disk(str(folder / "rejects")))
    assert counts["kept"] + counts["rejected"] == counts["candidates"] + counts["not_applicable"]
    assert info["scorer_pairs"]["scored"] == 0  # every score came from the cache of the killed run
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") and p.is_dir()]
