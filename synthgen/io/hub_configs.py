"""The Hub dataset's configs: one per training format, with the columns and the losses each is for."""

from __future__ import annotations

from typing import Any

# name -> (columns, what it is for). `triplet` is the default config (load_dataset(repo) without a name).
CONFIGS: dict[str, tuple[str, str]] = {
    "triplet": ("anchor, positive, negative",
                "MultipleNegativesRankingLoss (and its Cached/GIST variants), TripletLoss"),
    "n-tuple": ("anchor, positive, negative_1..negative_k",
                "MultipleNegativesRankingLoss with k hard negatives per (query, positive)"),
    "pair-score": ("anchor, passage, score",
                   "CoSENTLoss / AnglELoss: float teacher score of the validation scorer (higher = more relevant; "
                   "only the order within a batch matters to these losses)"),
    "pair-label": ("anchor, passage, label",
                   "ContrastiveLoss / OnlineContrastiveLoss: binary label, 1 = positive, 0 = negative"),
    "margin-mse": ("anchor, positive, negative, label (float margin)",
                   "MarginMSELoss distillation: label = the validation scorer's score(q, positive) - score(q, negative)"),
    "full": ("anchor, positive, negative + provenance (ids, source, strategy, model, template_hash, scores)",
             "inspection and filtering; `select_columns([\"anchor\", \"positive\", \"negative\"])` before training"),
    "rejects": ("the `full` columns + stage, reason, rule, details", "what validation dropped, and why (not for training)"),
}
DEFAULT_CONFIG = "triplet"


def configs_yaml(names: list[str]) -> list[dict[str, Any]]:
    """The card's `configs:` entries (the Hub's and `datasets`' way to name parquet folders)."""
    out = []
    for name in names:
        entry: dict[str, Any] = {"config_name": name, "data_files": [{"split": "train", "path": f"{name}/train-*"}]}
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        out.append(entry)
    return out
