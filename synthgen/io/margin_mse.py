"""The `margin-mse` format: teacher score margins for distillation with sentence-transformers' MarginMSELoss.

One row per kept (query, positive, negative): `anchor, positive, negative, label` with
label = score(query, positive) - score(query, negative), both scores from the run's validation scorer
(the rows' `positive_score` / `negative_score`). MarginMSELoss reads the first three columns as
(query, passage_one, passage_two) and `label` as the gold margin, so the dataset trains as written.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from synthgen.core.errors import LoaderError
from synthgen.core.schema import Batch

log = logging.getLogger(__name__)

COLUMNS = ("anchor", "positive", "negative", "label")


def to_margin_mse(rows: Batch) -> tuple[pa.Table, dict[str, Any]]:
    """Scored rows as (anchor, positive, negative, label=margin); rows missing a score are left out and counted."""
    keep = [i for i, (p, n) in enumerate(zip(rows["positive_score"], rows["negative_score"]))
            if p is not None and n is not None]
    unscored = len(rows["anchor"]) - len(keep)
    if not keep:
        raise LoaderError("margin-mse needs positive_score/negative_score: the run has no scored rows "
                          "(rescore it with `synthgen validate`)")
    if unscored:
        log.warning("margin-mse: %d rows without a teacher score left out", unscored)
    table = pa.table({
        **{c: pa.array([rows[c][i] for i in keep], pa.string()) for c in COLUMNS[:3]},
        "label": pa.array([float(rows["positive_score"][i]) - float(rows["negative_score"][i]) for i in keep],
                          pa.float64()),
    })
    return table, {"unscored_left_out": unscored}
