"""The baseline: sentence-transformers' `mine_hard_negatives` on the same visible pairs, corpus and model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.core.config import Config, ScorerConfig
from synthgen.evaluation.audit.metrics import hardness
from synthgen.evaluation.audit.split import AuditSplit

log = logging.getLogger(__name__)


def open_mining_scorer(cfg: Config, corpus: dict[str, str]):
    """The mining model as a cosine scorer, preloaded with the miner's cached corpus embeddings (same model,
    same max length): hardness of any corpus passage then costs a lookup, not an encode."""
    from synthgen.core.device import open_dense_model
    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.miners.dense import DenseMiner
    from synthgen.validate.scorer import BiEncoderScorer

    model, name, ref = open_dense_model(cfg.mine)
    dense = DenseMiner(model, name, ref, Corpus(list(corpus), list(corpus.values())), cfg.mine)
    dense.setup()
    scorer = BiEncoderScorer(model, name, ScorerConfig(max_length=cfg.mine.max_seq_length,
                                                       batch_size=cfg.mine.batch_size,
                                                       query_prompt=cfg.mine.query_prompt,
                                                       passage_prompt=cfg.mine.passage_prompt))
    scorer.preload(dense.corpus.texts, dense.emb)
    return scorer, name


def seed_st_cache(folder: Path, model, corpus: list[str], mining, prompt: str | None) -> None:
    """Write the miner's corpus embeddings (same model, same max length, normalised) where `mine_hard_negatives`
    looks for its embedding cache, so the sweep does not encode the corpus a second time. The file name follows
    sentence-transformers 6.x (a hash of model name, prompts and the deduplicated corpus); if that scheme
    changes, ST simply encodes the corpus itself and the numbers stay the same."""
    import hashlib

    texts = list(dict.fromkeys(corpus))
    digest = hashlib.sha256(repr((model.model_card_data.base_model or "", prompt, None, texts)).encode()).hexdigest()
    dest = folder / f"corpus_embeddings_{digest}.npy"
    vectors = None if dest.exists() else mining.preloaded(texts)
    if vectors is not None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(dest, vectors)


def st_sweep(cfg: Config, split: AuditSplit, corpus: dict[str, str], mining, independent,
             opts: argparse.Namespace, settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each setting: share of pairs with a negative, kept FN rate (negatives that are hidden positives) and
    hardness, measured exactly as for synthgen's own run."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    anchors, positives, qids = [], [], []
    for qid, pids in split.visible.items():
        for pid in pids:
            anchors.append(split.queries[qid])
            positives.append(corpus[pid])
            qids.append(qid)
    pairs = Dataset.from_dict({"anchor": anchors, "positive": positives})
    ids_by_text: dict[str, set[str]] = {}
    for pid, text in corpus.items():
        ids_by_text.setdefault(text, set()).add(pid)
    qid_by_anchor = dict(zip(anchors, qids))
    model = mining.model
    cache = Path(cfg.output_dir) / ".st-embeddings"
    seed_st_cache(cache, model, list(corpus.values()), mining, cfg.mine.passage_prompt)
    old = model.max_seq_length
    model.max_seq_length = cfg.mine.max_seq_length  # the same model settings synthgen mined with
    per_pair = max(1, sum(cfg.mine.sources.values()))  # as many negatives per pair as synthgen keeps
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, kwargs in settings.items():
            log.info("ST mine_hard_negatives: %s", name)
            mined = mine_hard_negatives(pairs, model, corpus=list(corpus.values()), num_negatives=per_pair,
                                        sampling_strategy="top", batch_size=cfg.mine.batch_size, verbose=False,
                                        query_prompt=cfg.mine.query_prompt, corpus_prompt=cfg.mine.passage_prompt,
                                        cache_folder=str(cache), **kwargs)
            rows = mined.to_dict()
            fn = sum(bool(ids_by_text.get(n, set()) & split.hidden[qid_by_anchor[a]])
                     for a, n in zip(rows["anchor"], rows["negative"]))
            kept = len(rows["negative"])
            with_neg = len(set(zip(rows["anchor"], rows["positive"])))
            out[name] = {"settings": {**kwargs, "num_negatives": per_pair}, "kept": kept,
                         "pair_yield": round(with_neg / len(anchors), 4),
                         "fn_rate": round(fn / kept, 4) if kept else None, "kept_false_negatives": fn,
                         **hardness(list(zip(rows["anchor"], rows["negative"])), mining, independent,
                                    opts.independent_sample, opts.seed)}
    finally:
        model.max_seq_length = old
    return out
