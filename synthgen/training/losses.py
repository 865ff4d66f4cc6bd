"""Losses that add a teacher to MultipleNegativesRankingLoss, each from one forward pass per batch.

`mnrl-mse`: MNRL plus a weighted MarginMSELoss on the same rows. MNRL alone learns only "the positive beats every
other passage in the batch"; MarginMSE alone learns the teacher's margin on the one listed negative but never
sees the batch's other passages. MNRL's logits are cosine x 20 while MarginMSE regresses raw margins (RMS ~0.3),
so MarginMSE's gradient is ~2 orders smaller at equal weight: `weight` (eval's --mse-weight) puts the two on one
scale.

`inbatch-kl`: MNRL plus KL to the teacher's distribution over every passage of the batch. The teacher's scores
of all train queries x all train passages are computed up front (InBatchTeacher), which is quadratic: fine for
an eval's few thousand rows; for a full training set they are scored batch by batch instead
(teacher.PerBatchTeacher: only the pairs that meet in a batch, linear in the steps).

`listwise-kl`: MNRL plus KL to the teacher over each row's own positive and negatives only, from the row's margins
(softmax ignores a shift, so score(q,pos) - score(q,neg_i) gives the same distribution as the raw scores): the
information an exported n-tuple with teacher scores carries, what sentence-transformers' DistillKLDivLoss reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _embed_columns(model: Any, sentence_features) -> list:
    """One embedding tensor per column: sentence-transformers' own `embed_columns` (>= 6, merges columns into one
    forward pass where it can), else one forward per column."""
    try:
        from sentence_transformers.base.losses.merged_forward import embed_columns
    except ImportError:
        return [model(f)["sentence_embedding"] for f in sentence_features]
    return embed_columns(model, sentence_features)


def _positive_weight(term: str, weight: float) -> float:
    """A loss term's weight as a float; 0, below or nan would switch the term off or turn it around."""
    if not weight > 0:
        raise ValueError(f"{term} weight must be > 0, got {weight}")
    return float(weight)


def mnrl_plus_margin_mse(model: Any, weight: float, mnrl_cls: Any, margin_mse_cls: Any) -> Any:
    """An nn.Module loss for SentenceTransformerTrainer over (anchor, positive, negative..., label) rows."""
    from torch import nn

    weight = _positive_weight("mse", weight)

    class MnrlPlusMarginMSE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mnrl = mnrl_cls(model)
            self.margin_mse = margin_mse_cls(model)
            self.weight = float(weight)

        def forward(self, sentence_features, labels):
            # Each column embedded once; both losses read the same embeddings (MNRL ignores the labels).
            embeddings = _embed_columns(self.model, sentence_features)
            return (self.mnrl.compute_loss_from_embeddings(embeddings, labels)
                    + self.weight * self.margin_mse.compute_loss_from_embeddings(embeddings, labels))

        def get_config_dict(self) -> dict[str, Any]:
            return {"mse_weight": self.weight}

    return MnrlPlusMarginMSE()


@dataclass
class InBatchTeacher:
    """The teacher's score of every train query against every train passage (positives and negatives), already on
    the student's cosine scale, and which query / passages each train row holds (column 0: the positive)."""
    scores: Any  # (queries x passages) float32 array
    row_query: list[int]
    row_passages: list[list[int]]  # per column, per row

    def batch(self, query_ids: Any, passage_ids: Any) -> Any:
        """The (len(query_ids) x len(passage_ids)) float32 scores of one batch."""
        import numpy as np

        return self.scores[np.ix_(np.asarray(query_ids), np.asarray(passage_ids))]


def mnrl_plus_inbatch_kl(model: Any, teacher: InBatchTeacher, mnrl_cls: Any, weight: float = 1.0) -> Any:
    """MNRL plus `weight` x KL(teacher || student) over each query's whole batch: every passage of the batch
    (positives and negatives of all rows), scored by the teacher, not only the row's own negative. The rows' labels
    are their row numbers, which is how the loss finds the teacher's scores for the batch (TAS-B's in-batch
    distillation)."""
    import torch
    from torch import nn

    weight = _positive_weight("kl", weight)

    class MnrlPlusInBatchKL(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mnrl = mnrl_cls(model)
            self.teacher = teacher
            self.row_query = torch.as_tensor(teacher.row_query, dtype=torch.long)
            self.row_passages = torch.as_tensor(teacher.row_passages, dtype=torch.long)  # (columns, rows)

        def forward(self, sentence_features, labels):
            embeddings = _embed_columns(self.model, sentence_features)
            rows = labels.long().cpu()
            queries = nn.functional.normalize(embeddings[0], dim=-1)
            docs = nn.functional.normalize(torch.cat(embeddings[1:]), dim=-1)
            student = queries @ docs.T * self.mnrl.scale  # the logits MNRL itself uses
            doc_ids = self.row_passages[:len(embeddings) - 1, rows].reshape(-1)  # column-major, as torch.cat above
            # the teacher's scores are on the student's cosine scale: the same x scale makes them logits
            scores = self.teacher.batch(self.row_query[rows].numpy(), doc_ids.numpy())
            target = torch.as_tensor(scores, dtype=torch.float32).to(student.device) * self.mnrl.scale
            kl = nn.functional.kl_div(student.log_softmax(-1), target.log_softmax(-1), log_target=True,
                                      reduction="batchmean")
            return self.mnrl.compute_loss_from_embeddings(embeddings, labels) + weight * kl

        def get_config_dict(self) -> dict[str, Any]:
            return {"teacher": "in-batch KL", "kl_weight": weight}

    return MnrlPlusInBatchKL()


def mnrl_plus_listwise_kl(model: Any, mnrl_cls: Any, weight: float = 1.0) -> Any:
    """MNRL plus `weight` x KL(teacher || student) over each row's [positive, negative_1..k]. Labels: the teacher's
    margins score(q,pos) - score(q,neg_i) on the student's cosine scale (one float per row, or k), so the teacher's
    logits are -margin x MNRL's scale (the positive at 0), the same scale as the student's."""
    import torch
    from torch import nn

    weight = _positive_weight("kl", weight)

    class MnrlPlusListwiseKL(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mnrl = mnrl_cls(model)

        def forward(self, sentence_features, labels):
            embeddings = _embed_columns(self.model, sentence_features)
            queries = nn.functional.normalize(embeddings[0], dim=-1)
            docs = torch.stack([nn.functional.normalize(e, dim=-1) for e in embeddings[1:]], dim=1)  # (B, 1+k, d)
            student = torch.einsum("bd,bcd->bc", queries, docs) * self.mnrl.scale
            margins = labels.to(student.dtype).reshape(len(student), -1)
            target = torch.cat([torch.zeros_like(margins[:, :1]), -margins], dim=1) * self.mnrl.scale
            kl = nn.functional.kl_div(student.log_softmax(-1), target.log_softmax(-1), log_target=True,
                                      reduction="batchmean")
            return self.mnrl.compute_loss_from_embeddings(embeddings, labels) + weight * kl

        def get_config_dict(self) -> dict[str, Any]:
            return {"teacher": "listwise KL", "kl_weight": weight}

    return MnrlPlusListwiseKL()
