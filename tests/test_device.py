"""`device: auto` (the default of the scorer and the dense miner): cuda, else mps, else cpu."""

import torch

from synthgen.core.config import ScorerConfig
from synthgen.core.config_load import load_config
from synthgen.core.device import resolve_device


def _best() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def test_auto_is_the_default_and_resolves_to_the_best_device():
    cfg = load_config()
    assert cfg.scorer.device == "auto" and cfg.mine.device == "auto"
    assert resolve_device("auto") == resolve_device(None) == _best()
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"  # explicit choices pass through


def test_the_default_scorer_runs_on_the_resolved_device():
    from synthgen.validate.load import load_scorer

    scorer = load_scorer(ScorerConfig(max_length=32))
    assert scorer.model.device.type == _best()
    (pos, neg) = scorer.score(["boiling point of water"] * 2,
                              ["Water boils at 100 degrees Celsius.", "Granite is an igneous rock."])
    assert pos > neg
