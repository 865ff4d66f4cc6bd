"""`mnrl-mse`: MultipleNegativesRankingLoss plus a weighted MarginMSELoss on the same rows, from one forward pass.

MNRL alone learns only "the positive beats every other passage in the batch"; MarginMSE alone learns the
teacher's margin on the one listed negative but never sees the batch's other passages. The sum keeps both
signals. MNRL's logits are cosine x 20 while MarginMSE regresses raw margins (RMS ~0.3), so MarginMSE's
gradient is ~2 orders smaller at equal weight: `weight` (eval's --mse-weight) puts the two on one scale."""

from __future__ import annotations

from typing import Any


def mnrl_plus_margin_mse(model: Any, weight: float, mnrl_cls: Any, margin_mse_cls: Any) -> Any:
    """An nn.Module loss for SentenceTransformerTrainer over (anchor, positive, negative..., label) rows."""
    from torch import nn

    if not weight > 0:
        raise ValueError(f"mse weight must be > 0, got {weight}")

    class MnrlPlusMarginMSE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mnrl = mnrl_cls(model)
            self.margin_mse = margin_mse_cls(model)
            self.weight = float(weight)

        def forward(self, sentence_features, labels):
            # Each column embedded once; both losses read the same embeddings (MNRL ignores the labels).
            embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
            return (self.mnrl.compute_loss_from_embeddings(embeddings, labels)
                    + self.weight * self.margin_mse.compute_loss_from_embeddings(embeddings, labels))

        def get_config_dict(self) -> dict[str, Any]:
            return {"mse_weight": self.weight}

    return MnrlPlusMarginMSE()
