"""Retrieval evaluation for `synthgen eval`: fine-tune a bi-encoder on (query, positive[, negative]) rows,
then score it on held-out queries (nDCG@10 with graded gains, Recall@100).

Everything a fair comparison needs lives here: the same pairs and steps for every source, one max
sequence length for zero-shot, training and scoring, and a documented fill for pairs without a negative.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.core.errors import LoaderError
from synthgen.io.beir import load_beir, load_corpus

log = logging.getLogger(__name__)


@dataclass
class EvalData:
    corpus_ids: list[str]
    corpus: list[str]
    train: dict[str, list]  # query_id, query, positive_id, positive (one row per judged positive)
    test_queries: dict[str, str]
    test_qrels: dict[str, dict[str, float]]  # graded gains
    judged: dict[str, set[str]]  # every positively judged (query, doc) over all splits
    # every judgement over all splits, zero / negative scores included: {query: {doc: score}}
    judgements: dict[str, dict[str, float]] = field(default_factory=dict)
    # qrels/dev.tsv when the folder has one (NFCorpus): for choosing between conditions, test for the report
    dev_queries: dict[str, str] = field(default_factory=dict)
    dev_qrels: dict[str, dict[str, float]] = field(default_factory=dict)

    def split(self, name: str) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
        return (self.test_queries, self.test_qrels) if name == "test" else (self.dev_queries, self.dev_qrels)


def read_qrels(path: Path, positive_only: bool = True) -> dict[str, dict[str, float]]:
    """qrels/<split>.tsv -> {query: {doc: score}}; only scores > 0 unless `positive_only` is False."""
    if not path.is_file():
        raise LoaderError(f"missing file: {path}")
    out: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)
        for rec in reader:
            if len(rec) >= 3 and (float(rec[2]) > 0 or not positive_only):
                out.setdefault(rec[0].strip(), {})[rec[1].strip()] = float(rec[2])
    return out


def _only_queries(train: dict[str, list], keep: set[str]) -> dict[str, list]:
    idx = [i for i, q in enumerate(train["query_id"]) if q in keep]
    return {c: [v[i] for i in idx] for c, v in train.items()}


def _hold_out(train: dict[str, list], n: int, seed: int) -> tuple[dict[str, list], set[str]]:
    """Move `n` seeded train queries (all their pairs) out of train: a dev split for data without one."""
    qids = sorted(set(train["query_id"]))
    if n >= len(qids):
        raise ValueError(f"--dev-queries {n}: the train split has only {len(qids)} queries; keep some for training")
    held = set(random.Random(f"dev-{seed}").sample(qids, n))
    return _only_queries(train, set(qids) - held), held


def load_eval_data(folder: str | Path, max_train_queries: int | None = None, seed: int = 0,
                   dev_queries: int = 0) -> EvalData:
    """A BEIR folder as train pairs, test (and dev) queries with graded qrels, and every judgement.

    `dev_queries` > 0 holds that many train queries out as the dev split (for choosing between conditions
    without the test qrels), before `max_train_queries` samples the rest; only for folders without qrels/dev.tsv.
    """
    import json

    root = Path(folder)
    corpus = load_corpus(root)
    train = load_beir(root, "train")
    dev_path = root / "qrels" / "dev.tsv"
    held: set[str] = set()
    if dev_queries:
        if dev_path.is_file():
            raise ValueError(f"{root} has its own dev split (qrels/dev.tsv); --dev-queries is for data without one")
        train, held = _hold_out(train, dev_queries, seed)
    if max_train_queries is not None:
        qids = sorted(set(train["query_id"]))
        train = _only_queries(train, set(random.Random(seed).sample(qids, min(max_train_queries, len(qids)))))
    test_qrels = read_qrels(root / "qrels" / "test.tsv")
    if held:
        dev_qrels = {q: g for q, g in read_qrels(root / "qrels" / "train.tsv").items() if q in held}
    else:
        dev_qrels = read_qrels(dev_path) if dev_path.is_file() else {}
    queries = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    judged: dict[str, set[str]] = {}
    judgements: dict[str, dict[str, float]] = {}
    for path in sorted((root / "qrels").glob("*.tsv")):
        for qid, docs in read_qrels(path, positive_only=False).items():
            judgements.setdefault(qid, {}).update(docs)
            judged.setdefault(qid, set()).update(d for d, g in docs.items() if g > 0)
    return EvalData(
        corpus_ids=list(corpus), corpus=list(corpus.values()), train=train,
        test_queries={q: queries[q] for q in test_qrels if q in queries}, test_qrels=test_qrels, judged=judged,
        judgements=judgements, dev_queries={q: queries[q] for q in dev_qrels if q in queries}, dev_qrels=dev_qrels,
    )


def ndcg_at_k(ranked: list[str], gains: dict[str, float], k: int = 10) -> float:
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], gains: dict[str, float], k: int = 100) -> float:
    relevant = {d for d, g in gains.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def encode(model: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def model_fingerprint(model: Any) -> str:
    """A hash of the weights: corpus embeddings are cached per checkpoint, never reused across them."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes()[:4096])
        h.update(str(float(tensor.float().sum())).encode())
    h.update(str(model.max_seq_length).encode())
    return h.hexdigest()[:16]


def corpus_embeddings(model: Any, data: EvalData, cache_dir: Path | None = None) -> np.ndarray:
    emb_path = cache_dir / f"corpus-{model_fingerprint(model)}.npy" if cache_dir else None
    if emb_path is not None and emb_path.is_file():
        return np.load(emb_path)
    corpus_emb = encode(model, data.corpus)
    if emb_path is not None:
        emb_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(emb_path, corpus_emb)
    return corpus_emb


def score_retriever(model: Any, data: EvalData, cache_dir: Path | None = None) -> dict[str, Any]:
    """nDCG@10 and Recall@100 over the test queries, by exact search over the whole corpus, with the
    per-query nDCG@10 (in `data.test_queries` order) for paired tests; the same under "dev" when there is one."""
    corpus_emb = corpus_embeddings(model, data, cache_dir)
    out: dict[str, Any] = {}
    for split in ("test", "dev"):
        queries, qrels = data.split(split)
        if not queries:
            continue
        qids = list(queries)
        sims = encode(model, [queries[q] for q in qids]) @ corpus_emb.T
        top = np.argsort(-sims, axis=1)[:, :100]
        ndcg, recall = [], []
        for row, qid in zip(top, qids):
            ranked = [data.corpus_ids[j] for j in row]
            ndcg.append(ndcg_at_k(ranked, qrels[qid], 10))
            recall.append(recall_at_k(ranked, qrels[qid], 100))
        scores = {"ndcg@10": float(np.mean(ndcg)), "recall@100": float(np.mean(recall)), "per_query_ndcg@10": ndcg}
        if split == "test":
            out.update(scores)
        else:
            out["dev"] = scores
    return out


def fill_negatives(data: EvalData, negatives: list[str | None], negative_ids: list[str | None],
                   seed: int, exclude: list[set[str]] | None = None) -> tuple[list[str], list[str | None], int]:
    """Pairs without a negative get a random corpus passage not judged relevant for that query.

    The same rule for every source, so all train on the same pairs for the same steps. `exclude[i]`: passage ids
    pair i already has in another negative column (n-tuples), never drawn again for it.
    """
    rng = random.Random(seed)
    out, ids, filled = list(negatives), list(negative_ids), 0
    for i, neg in enumerate(out):
        if neg:
            continue
        qid = data.train["query_id"][i]
        relevant = data.judged.get(qid, set())
        if all(d in relevant for d in data.corpus_ids):
            raise ValueError(f"query {qid}: every corpus passage is judged relevant, nothing to fill with")
        while True:
            j = rng.randrange(len(data.corpus))
            if data.corpus_ids[j] not in relevant and (exclude is None or data.corpus_ids[j] not in exclude[i]):
                break
        out[i], ids[i] = data.corpus[j], data.corpus_ids[j]
        filled += 1
    return out, ids, filled


def judged_shares(data: EvalData, negatives: list[str | None], negative_ids: list[str | None],
                  query_ids: list[str] | None = None) -> dict[str, Any]:
    """What the qrels (all splits) say about the negatives a source chose (before any fill).

    Shares of the chosen negatives, summing to 1: judged relevant for their query (known false negatives),
    judged non-relevant (score <= 0), unjudged corpus passages, and generated texts (not corpus passages,
    so no qrels can judge them). Pairs the source left empty are not counted (see `filled`).
    """
    counts = {"judged_relevant": 0, "judged_nonrelevant": 0, "unjudged": 0, "generated": 0}
    for qid, neg, nid in zip(query_ids or data.train["query_id"], negatives, negative_ids):
        if not neg:
            continue
        if nid is None:
            counts["generated"] += 1
        elif nid in data.judged.get(qid, set()):
            counts["judged_relevant"] += 1
        elif nid in data.judgements.get(qid, {}):
            counts["judged_nonrelevant"] += 1
        else:
            counts["unjudged"] += 1
    total = sum(counts.values())
    out: dict[str, Any] = {f"{k}_negatives": (v / total if total else 0.0) for k, v in counts.items()}
    out["chosen_negatives"] = total
    return out
