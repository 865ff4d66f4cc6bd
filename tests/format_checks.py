"""The trainers' own reading of their training files, re-implemented step by step for the tests.

Neither FlagEmbedding nor Tevatron installs here (GPU stacks), so these follow what their dataset classes
do with each record (FlagEmbedding `AbsEmbedderTrainDataset`: `_load_dataset` + `__getitem__`; Tevatron v2
`TrainDataset.__getitem__`, both its id-based path and its `positive_passages` path, with
`_get_info_from_docid`). Anything those would trip over (a missing column, a null or non-numeric score, a
string where a list is expected, an unknown docid, no negatives) raises here too.
"""

from __future__ import annotations

import math
import random

import datasets


def flagembedding_items(path: str, knowledge_distillation: bool, train_group_size: int = 4, seed: int = 0,
                        cache_dir: str | None = None):
    """(query, passages, teacher_scores) per record, as FlagEmbedding's embedder dataset builds them."""
    rng = random.Random(seed)
    ds = datasets.load_dataset("json", data_files=path, split="train", cache_dir=cache_dir)
    if not knowledge_distillation:
        ds = ds.remove_columns([c for c in ("pos_scores", "neg_scores") if c in ds.column_names])
    elif "pos_scores" not in ds.column_names or "neg_scores" not in ds.column_names:
        raise ValueError(f"`pos_scores` and `neg_scores` not found in the features of training data in {path}")
    out = []
    for data in ds:
        query = data["query"]
        assert isinstance(query, str)
        assert isinstance(data["pos"], list) and isinstance(data["neg"], list)
        pos_idx = rng.choice(list(range(len(data["pos"]))))
        passages = [data["pos"][pos_idx]]
        neg_all = list(range(len(data["neg"])))
        if len(data["neg"]) < train_group_size - 1:
            num = math.ceil((train_group_size - 1) / len(data["neg"]))  # ZeroDivisionError on no negatives
            neg_idxs = rng.sample(neg_all * num, train_group_size - 1)
        else:
            neg_idxs = rng.sample(neg_all, train_group_size - 1)
        passages += [data["neg"][i] for i in neg_idxs]
        teacher = None
        if knowledge_distillation:
            assert isinstance(data["pos_scores"], list) and isinstance(data["neg_scores"], list)
            teacher = [data["pos_scores"][pos_idx]] + [data["neg_scores"][i] for i in neg_idxs]
            if not all(isinstance(s, (int, float)) for s in teacher):
                raise ValueError("pos_score or neg_score must be digit")
        assert all(isinstance(p, str) for p in passages)
        out.append((query, passages, teacher))
    return out


def tevatron_items(train_path: str, corpus_path: str | None = None, train_group_size: int = 3, seed: int = 0,
                   query_prefix: str = "", passage_prefix: str = "", cache_dir: str | None = None):
    """(query text, [document texts]) per record, as Tevatron v2's TrainDataset builds them (epoch 0)."""
    train = datasets.load_dataset("json", data_files=train_path, split="train", cache_dir=cache_dir)
    corpus = (datasets.load_dataset("json", data_files=corpus_path, split="train", cache_dir=cache_dir)
              if corpus_path else None)
    docid_to_index = {d: i for i, d in enumerate(corpus["docid"])} if corpus is not None else {}

    def info(docid: str) -> str:
        doc = corpus[docid_to_index[docid]]  # KeyError on an unknown docid, as in Tevatron
        assert doc["docid"] == docid
        text = doc.get("text", "")
        return passage_prefix + ("" if text is None else text)

    out = []
    for item in range(len(train)):
        group = train[item]
        hashed_seed = hash(item + seed)
        if "positive_passages" in group:
            query = query_prefix + group["query"]
            pos = group["positive_passages"][hashed_seed % len(group["positive_passages"])]
            docs = [passage_prefix + (pos["title"] + " " + pos["text"] if "title" in pos else pos["text"])]
            negs = list(group["negative_passages"])
            picked = _pick(negs, train_group_size, hashed_seed)
            docs += [passage_prefix + (n["title"] + " " + n["text"] if "title" in n else n["text"]) for n in picked]
        else:
            _ = group["query_id"]
            query = query_prefix + (group.get("query_text", "") or "")
            pos_ids, neg_ids = group["positive_document_ids"], group["negative_document_ids"]
            docs = [info(pos_ids[hashed_seed % len(pos_ids)])]
            docs += [info(d) for d in _pick(list(neg_ids), train_group_size, hashed_seed)]
        assert all(isinstance(d, str) for d in docs)
        out.append((query, docs))
    return out


def _pick(negatives: list, train_group_size: int, hashed_seed: int) -> list:
    size = train_group_size - 1
    if len(negatives) < size:
        return random.choices(negatives, k=size)  # IndexError on no negatives, as in Tevatron
    if train_group_size == 1:
        return []
    random.Random(hashed_seed).shuffle(negatives)
    return (negatives * 2)[:size]
