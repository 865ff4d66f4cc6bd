"""`synthgen mine`: negatives retrieved from the corpus, mixed per (query, positive) with synthetic ones.

Sources: `random` (seeded per query), `bm25` (bm25s), `dense` (a sentence-transformers bi-encoder; corpus
embeddings computed in batches and cached on disk per model + corpus; top-k by exact search over corpus
chunks, so memory stays at queries x (k + chunk), never queries x corpus) and `synthetic` (the LLM, as in
`generate`, or rows of an earlier run). The query's positives are excluded by id and by near-duplicate
text (rapidfuzz) before ranks are counted, then the rank window [range_min, range_max) applies.

Each (query, positive) pair gets up to `mine.k` candidates per source (a query's ranked candidates are dealt
round-robin to its positives, so they differ across positives: the dedup rule rejects repeats within a
query). All candidates go through the same validation stage as `generate`; `MixFilter` then keeps the
`mine.sources[source]` hardest survivors per pair and source. Every row carries `source` and `strategy`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.config import MINE_SOURCES, Config, InputConfig, MineConfig, config_to_dict
from synthgen.dedup import CopyIndex, normalise
from synthgen.device import PACKAGED_DENSE_NAME, open_dense_model, resolve_device  # noqa: F401 (re-exported)
from synthgen.pipeline import Filter, Pipeline, Step, reason_key
from synthgen.progress import progress
from synthgen.read import LoaderError, load_corpus, load_input, load_qrels, sample_path
from synthgen.schema import (CANDIDATE_COLUMNS, OPTIONAL_COLUMNS, Batch, batch_len, concat_batches, empty_batch,
                             positives_by_query)

log = logging.getLogger(__name__)

ROW_COLUMNS = CANDIDATE_COLUMNS + OPTIONAL_COLUMNS + ["reason"]


# --------------------------------------------------------------------------------------------- corpus


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]
    _norm: dict[int, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for pid, text in zip(self.ids, self.texts):
            h.update(pid.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
        return h.hexdigest()

    def normalised(self, i: int) -> str:
        if i not in self._norm:
            self._norm[i] = normalise(self.texts[i])
        return self._norm[i]


def input_folder(cfg: InputConfig) -> Path:
    return Path(cfg.path) if cfg.path else sample_path()


def load_mining_corpus(cfg: InputConfig, pairs: Batch) -> Corpus:
    """The BEIR corpus.jsonl of the input; for a JSONL of pairs, the distinct positives of all queries."""
    folder = input_folder(cfg)
    if cfg.format == "beir" or (cfg.format == "auto" and folder.is_dir()):
        corpus = load_corpus(folder)
        if not corpus:
            raise LoaderError(f"{folder / 'corpus.jsonl'}: no passages to mine from")
        return Corpus(list(corpus), list(corpus.values()))
    seen: dict[str, str] = {}
    for pid, text in zip(pairs["positive_id"], pairs["positive"]):
        seen.setdefault(pid, text)
    log.warning("input is a file of pairs: mining from its %d distinct positives (no corpus.jsonl)", len(seen))
    return Corpus(list(seen), list(seen.values()))


# --------------------------------------------------------------------------------------------- miners


class Miner:
    """Ranks corpus passages for queries: `rank(query_ids, queries, depth)` -> corpus indices, best first."""

    source = "miner"
    model: str | None = None
    windowed = True  # the rank window applies (not to random negatives)

    def setup(self) -> None:
        """Build indexes / load embeddings; called once before the first batch."""

    def strategy(self, cfg: MineConfig) -> str:
        return f"{self.source}[{cfg.range_min}:{cfg.range_max}]" if self.windowed else self.source

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        raise NotImplementedError


class RandomMiner(Miner):
    source = "random"
    windowed = False

    def __init__(self, corpus: Corpus, seed: int):
        self.corpus, self.seed = corpus, seed

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        n = len(self.corpus)
        out = []
        for qid in query_ids:
            # One generator per query: the draw does not depend on batch order or on other queries.
            rng = np.random.default_rng([self.seed, zlib.crc32(qid.encode("utf-8"))])
            out.append(rng.choice(n, size=min(depth, n), replace=False).tolist())
        return out


class BM25Miner(Miner):
    source = "bm25"

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.retriever = None
        self.index_seconds = 0.0

    @property
    def model(self) -> str:  # type: ignore[override]
        from importlib.metadata import version

        return f"bm25s-{version('bm25s')}"

    def setup(self) -> None:
        if self.retriever is not None:
            return
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG on import
        t0 = time.perf_counter()
        tokens = bm25s.tokenize(self.corpus.texts, stopwords="en", show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self.index_seconds = time.perf_counter() - t0

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        import bm25s

        self.setup()
        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        docs, scores = self.retriever.retrieve(tokens, k=min(depth, len(self.corpus)), show_progress=False)
        # A passage sharing no term with the query scores 0: that is not a BM25 negative, drop it.
        return [[int(d) for d, s in zip(drow, srow) if s > 0] for drow, srow in zip(docs, scores)]


def exact_top_k(queries: np.ndarray, corpus_emb: np.ndarray, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products of each query over the corpus, chunk by chunk: memory Q x (k + chunk).

    `corpus_emb` may be a memory map; only one chunk is read at a time. Returns (indices, scores), best first.
    """
    n_q = queries.shape[0]
    k = min(k, corpus_emb.shape[0])
    best_s = np.empty((n_q, 0), dtype=np.float32)
    best_i = np.empty((n_q, 0), dtype=np.int64)
    for start in range(0, corpus_emb.shape[0], chunk):
        block = np.asarray(corpus_emb[start:start + chunk], dtype=np.float32)
        scores = queries @ block.T
        idx = np.broadcast_to(np.arange(start, start + block.shape[0]), scores.shape)
        cand_s = np.concatenate([best_s, scores], axis=1)
        cand_i = np.concatenate([best_i, idx], axis=1)
        if cand_s.shape[1] > k:
            part = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
            cand_s = np.take_along_axis(cand_s, part, axis=1)
            cand_i = np.take_along_axis(cand_i, part, axis=1)
        best_s, best_i = cand_s, cand_i
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_s, order, axis=1)


def model_identity(model_ref: str) -> dict[str, Any]:
    """What the embedding cache keys on: the name/path plus size and mtime of a local folder's weights."""
    ident: dict[str, Any] = {"model": model_ref}
    p = Path(model_ref)
    if p.is_dir():
        ident["files"] = sorted(
            (f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".json"))
    return ident


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "synthgen" / "embeddings"


class DenseMiner(Miner):
    """Bi-encoder retrieval: cosine similarity of normalised embeddings, exact top-k over corpus chunks."""

    source = "dense"

    def __init__(self, model, model_name: str, model_ref: str, corpus: Corpus, cfg: MineConfig):
        self.st_model, self.model, self.model_ref, self.corpus, self.cfg = model, model_name, model_ref, corpus, cfg
        self.emb: np.ndarray | None = None
        self.cache_file: Path | None = None
        self.cache_hit = False
        self.encode_seconds = 0.0

    def _encode(self, texts: list[str], prompt: str | None = None) -> np.ndarray:
        texts = [prompt + t for t in texts] if prompt else texts
        old = self.st_model.max_seq_length
        self.st_model.max_seq_length = self.cfg.max_seq_length  # the scorer may share this model
        try:
            return np.asarray(self.st_model.encode(
                texts, batch_size=self.cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False), dtype=np.float32)
        finally:
            self.st_model.max_seq_length = old

    def cache_key(self) -> str:
        key = {"identity": model_identity(self.model_ref), "max_seq_length": self.cfg.max_seq_length,
               "normalize": True, "corpus": self.corpus.fingerprint, "docs": len(self.corpus)}
        if self.cfg.passage_prompt:  # keys without a prompt stay as they were
            key["passage_prompt"] = self.cfg.passage_prompt
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]

    def setup(self) -> None:
        if self.emb is not None:
            return
        folder = Path(self.cfg.cache_dir) if self.cfg.cache_dir else default_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.cache_file = folder / f"{self.cache_key()}.npy"
        if self.cache_file.is_file():
            emb = np.load(self.cache_file, mmap_mode="r")
            if emb.shape[0] == len(self.corpus):
                self.emb, self.cache_hit = emb, True
                log.info("dense: corpus embeddings from cache %s", self.cache_file)
                return
            log.warning("dense: ignoring cache %s (%d rows for %d passages)", self.cache_file, emb.shape[0],
                        len(self.corpus))
        t0 = time.perf_counter()
        # Written batch by batch into a memory-mapped temp file, renamed when complete.
        tmp = self.cache_file.with_name(f".{self.cache_file.stem}.{os.getpid()}.tmp.npy")
        step = self.cfg.batch_size * 8
        mm = None
        try:
            with progress(len(self.corpus), "dense: encode corpus", "doc") as bar:
                for start in range(0, len(self.corpus), step):
                    vecs = self._encode(self.corpus.texts[start:start + step], self.cfg.passage_prompt)
                    if mm is None:
                        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                       shape=(len(self.corpus), vecs.shape[1]))
                    mm[start:start + len(vecs)] = vecs
                    bar.update(len(vecs))
            mm.flush()
            del mm
            os.replace(tmp, self.cache_file)
        finally:
            tmp.unlink(missing_ok=True)  # interrupted: no half-written file is left behind
        meta = {"model": self.model, "model_ref": self.model_ref, "docs": len(self.corpus),
                "corpus_fingerprint": self.corpus.fingerprint, "max_seq_length": self.cfg.max_seq_length}
        self.cache_file.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        self.encode_seconds = time.perf_counter() - t0
        self.emb = np.load(self.cache_file, mmap_mode="r")
        log.info("dense: encoded %d passages in %.1f s -> %s", len(self.corpus), self.encode_seconds, self.cache_file)

    def rank(self, query_ids: list[str], queries: list[str], depth: int) -> list[list[int]]:
        self.setup()
        idx, _ = exact_top_k(self._encode(queries, self.cfg.query_prompt), self.emb, depth, self.cfg.chunk_size)
        return idx.tolist()


# --------------------------------------------------------------------------------------------- steps


def _group_by_query(batch: Batch) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, qid in enumerate(batch["query_id"]):
        groups.setdefault(qid, []).append(i)
    return groups


class MinedSource(Step):
    """Pairs in, up to `k` mined candidates per pair out, positives and their near-copies excluded."""

    def __init__(self, miner: Miner, corpus: Corpus, cfg: MineConfig):
        self.miner, self.corpus, self.cfg = miner, corpus, cfg
        self.name = miner.source
        self.excluded: Counter = Counter()
        self.short_pairs = 0  # pairs that got fewer than k candidates (window too small)
        self.examined = 0  # ranked passages looked at (the excluded ones included)

    def setup(self) -> None:
        self.miner.setup()

    def _excluded(self, idx: int, pos_ids: set[str], copies: CopyIndex) -> str | None:
        if self.corpus.ids[idx] in pos_ids:
            return "positive_id"
        if copies.best(self.corpus.normalised(idx)):
            return "positive_text"
        return None

    def __call__(self, pairs: Batch) -> Batch:
        cfg, miner = self.cfg, self.miner
        groups = _group_by_query(pairs)
        qids = list(groups)
        queries = [pairs["query"][groups[q][0]] for q in qids]
        most_pos = max(len(r) for r in groups.values())
        need = most_pos * cfg.k
        # Depth covers the window plus what exclusion removes (the positives, plus slack for near-copies).
        depth = (cfg.range_max if miner.windowed else need) + most_pos + 16
        ranked = miner.rank(qids, queries, min(depth, len(self.corpus)))
        out = empty_batch(ROW_COLUMNS)
        strategy = miner.strategy(cfg)
        for qid, rows, cands in zip(qids, groups.values(), ranked):
            pos_ids = {pairs["positive_id"][i] for i in rows}
            copies = CopyIndex([normalise(pairs["positive"][i]) for i in rows], cfg.exclude_ratio)
            kept: list[int] = []
            limit = cfg.range_max if miner.windowed else len(rows) * cfg.k
            for idx in cands:
                self.examined += 1
                why = self._excluded(idx, pos_ids, copies)
                if why:
                    self.excluded[why] += 1
                    continue
                kept.append(idx)
                if len(kept) >= limit:
                    break
            window = kept[cfg.range_min:] if miner.windowed else kept
            for j, i in enumerate(rows):
                # Round-robin: each positive gets distinct, equally hard ones; when the window is short a
                # passage serves up to `reuse` positives of the query (its repeats come after every first use).
                mine = (window * cfg.reuse)[j::len(rows)][:cfg.k]
                self.short_pairs += len(mine) < cfg.k
                for idx in mine:
                    for col in ("query_id", "query", "positive_id", "positive"):
                        out[col].append(pairs[col][i])
                    out["negative"].append(self.corpus.texts[idx])
                    out["negative_id"].append(self.corpus.ids[idx])
                    out["source"].append(miner.source)
                    out["strategy"].append(strategy)
                    out["template_hash"].append(None)
                    out["model"].append(miner.model)
                    for col in ("positive_score", "negative_score", "difficulty", "reason"):
                        out[col].append(None)
        return out


class SyntheticLLM(Step):
    """The `generate` stage as a candidate source (scorer: for answer_removed; cache: resume, as in generate)."""

    name = "synthetic"

    def __init__(self, templates, backend, scorer=None, cache=None):
        from synthgen.generate import GenerateStep
        from synthgen.prompt import PromptStep

        self.prompt = PromptStep(templates, backend.passages_per_prompt, scorer)
        self.generate = GenerateStep(backend, cache)
        self.templates = templates

    def setup(self) -> None:
        self.generate.setup()

    def close(self) -> None:
        self.generate.close()

    def __call__(self, pairs: Batch) -> Batch:
        return self.generate(self.prompt(pairs))


class SyntheticFile(Step):
    """Synthetic candidates from an earlier run, matched to pairs by (query, positive) text."""

    name = "synthetic"

    def __init__(self, path: str | Path):
        from synthgen.validate_run import load_candidates

        p = Path(path)
        for sub in ("triplets", "kept"):
            if (p / sub).is_dir():
                p = p / sub
                break
        self.path = p
        rows = load_candidates(p)
        self.by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, (q, pos) in enumerate(zip(rows["query"], rows["positive"])):
            self.by_pair[(q, pos)].append(i)
        self.rows = rows
        self.model = next((m for m in rows["model"] if m), None)

    def __call__(self, pairs: Batch) -> Batch:
        out = empty_batch(ROW_COLUMNS)
        for i in range(batch_len(pairs)):
            for j in self.by_pair.get((pairs["query"][i], pairs["positive"][i]), []):
                for col in ROW_COLUMNS:
                    if col in ("query_id", "positive_id"):
                        out[col].append(pairs[col][i])
                    elif col in ("positive_score", "negative_score", "difficulty", "reason"):
                        out[col].append(None)  # validated again, with this run's thresholds
                    else:
                        out[col].append(self.rows.get(col, [None] * batch_len(self.rows))[j])
                if not out["source"][-1]:
                    out["source"][-1] = "synthetic"
        return out


class CandidateSources(Step):
    """Runs every source over the same pairs and concatenates their candidates (sources in a fixed order)."""

    name = "candidates"

    def __init__(self, sources: list[Step]):
        self.sources = sources
        self.rows: Counter = Counter()
        self.seconds: Counter = Counter()

    def setup(self) -> None:
        for s in self.sources:
            t0 = time.perf_counter()
            s.setup()
            self.seconds[s.name] += time.perf_counter() - t0

    def close(self) -> None:
        for s in reversed(self.sources):
            s.close()

    def __call__(self, pairs: Batch) -> Batch:
        outs = []
        for s in self.sources:
            t0 = time.perf_counter()
            out = s(pairs)
            self.seconds[s.name] += time.perf_counter() - t0
            self.rows[s.name] += batch_len(out)
            outs.append(out)
        return concat_batches(outs, ROW_COLUMNS)


class MixFilter(Filter):
    """Keeps the `quotas[source]` hardest validated negatives of each (query, positive) per source."""

    name = "mix"

    def __init__(self, quotas: dict[str, int]):
        self.quotas = quotas

    def decide(self, batch: Batch) -> list[str | None]:
        groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(batch["query_id"], batch["positive_id"], batch["source"])):
            groups[key].append(i)
        reasons: list[str | None] = [None] * batch_len(batch)
        for (_, _, source), rows in groups.items():
            quota = self.quotas.get(source, 0)
            score = batch["negative_score"]
            ranked = sorted(rows, key=lambda i: -(score[i] if score[i] is not None else -np.inf))
            for rank, i in enumerate(ranked[quota:], quota + 1):
                reasons[i] = f"over_quota (source={source}: rank {rank} > {quota})"
        return reasons


# --------------------------------------------------------------------------------------------- command


def shares_model(scorer, dense: DenseMiner) -> bool:
    """The validation scorer is the dense miner's model at the same max length: its embeddings can be reused."""
    return getattr(scorer, "model", None) is dense.st_model and \
        getattr(scorer, "max_length", None) == dense.cfg.max_seq_length and \
        getattr(scorer, "passage_prompt", None) == (dense.cfg.passage_prompt or "")


def _count_by(batches: list[Batch], column: str) -> Counter:
    return Counter(v for b in batches for v in b.get(column, []))


def mine(cfg: Config) -> Path:
    from synthgen.card import write_card
    from synthgen.run import open_backend, per_strategy, start_run
    from synthgen.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer, load_scorer
    from synthgen.validate import validation_steps
    from synthgen.write import package_versions, write_histograms, write_json, write_run

    t_start = time.perf_counter()
    mcfg = cfg.mine
    folder, cache = start_run(cfg, "mine")
    pairs = load_input(cfg.input)
    corpus = load_mining_corpus(cfg.input, pairs)
    quotas = {s: mcfg.sources[s] for s in MINE_SOURCES if mcfg.sources.get(s, 0) > 0}
    n_queries = len(set(pairs["query_id"]))
    log.info("%d queries, %d pairs, %d passages; per pair: %s", n_queries, batch_len(pairs), len(corpus),
             ", ".join(f"{n} {s}" for s, n in quotas.items()))
    with contextlib.ExitStack() as stack:
        stack.callback(cache.close)
        dense = None
        if "dense" in quotas:
            dense_model, dense_name, dense_ref = open_dense_model(mcfg)
        if cfg.scorer.model is None and "dense" in quotas and mcfg.dense_model is None \
                and resolve_device(cfg.scorer.device) == resolve_device(mcfg.device):
            log.warning("no cross-encoder configured: validating with %s (the dense miner's model, loaded once)",
                        EMBEDDED_SCORER_NAME)
            scorer = BiEncoderScorer(dense_model, EMBEDDED_SCORER_NAME, cfg.scorer)
        else:
            scorer = load_scorer(cfg.scorer)
        scorer.attach(cache)
        backend = templates = judge_template = None
        synthetic_llm = "synthetic" in quotas and not mcfg.synthetic_from
        if synthetic_llm or cfg.validate_.judge.enabled:
            from synthgen.prompt import load_templates

            templates = load_templates(cfg.prompts.dir, cfg.prompts.strategies)
            backend = open_backend(cfg, stack, len(templates) if synthetic_llm else 1)
            if cfg.validate_.judge.enabled:
                (judge_template,) = load_templates(cfg.prompts.dir, kind="judge")

        sources: list[Step] = []
        for name in quotas:
            if name == "synthetic":
                sources.append(SyntheticFile(mcfg.synthetic_from) if mcfg.synthetic_from
                               else SyntheticLLM(templates, backend, scorer, cache))
            elif name == "bm25":
                sources.append(MinedSource(BM25Miner(corpus), corpus, mcfg))
            elif name == "dense":
                dense = DenseMiner(dense_model, dense_name, dense_ref, corpus, mcfg)
                sources.append(MinedSource(dense, corpus, mcfg))
            elif name == "random":
                sources.append(MinedSource(RandomMiner(corpus, mcfg.seed), corpus, mcfg))
        candidates_step = CandidateSources(sources)
        steps = [candidates_step,
                 *validation_steps(cfg.validate_, scorer, list(dict.fromkeys(pairs["positive"])),
                                   backend, judge_template, positives_by_query(pairs), corpus.texts, cache=cache),
                 MixFilter(quotas)]
        pipeline = stack.enter_context(Pipeline(steps))
        if dense is not None and shares_model(scorer, dense):
            scorer.preload(corpus.texts, dense.emb)  # the corpus is encoded once, not again by the scorer
        kept, rejects = pipeline.run_all(pairs, cfg.batch_queries, desc="mine")

    n_kept, n_rejected = write_run(folder, kept, rejects)
    histograms = write_histograms(folder, kept, rejects)
    rejected_batches = [b for _, b in rejects]
    kept_by_source, rej_by_source = _count_by(kept, "source"), _count_by(rejected_batches, "source")
    per_source: dict[str, dict[str, Any]] = {}
    for s in sources:
        entry: dict[str, Any] = {"count_per_pair": quotas[s.name], "candidates": candidates_step.rows[s.name],
                                 "kept": kept_by_source[s.name], "rejected": rej_by_source[s.name],
                                 "seconds": round(candidates_step.seconds[s.name], 2)}
        if isinstance(s, MinedSource):
            entry.update(strategy=s.miner.strategy(mcfg), model=s.miner.model,
                         examined=s.examined, excluded_positive_id=s.excluded["positive_id"],
                         excluded_positive_text=s.excluded["positive_text"], short_pairs=s.short_pairs)
        if isinstance(s, SyntheticFile):
            entry.update(model=s.model, path=str(s.path))
        if isinstance(s, SyntheticLLM):
            entry.update(model=backend.model)
        per_source[s.name] = entry
    if dense is not None:
        per_source["dense"].update(encode_seconds=round(dense.encode_seconds, 2), cache_hit=dense.cache_hit,
                                   model_ref=dense.model_ref, max_seq_length=mcfg.max_seq_length,
                                   cache_file=str(dense.cache_file), corpus_docs=len(corpus))

    # How many mined negatives the qrels (all splits) judge relevant for their query: should be 0.
    qrels_check = None
    folder_in = input_folder(cfg.input)
    if (folder_in / "qrels").is_dir():
        judged = load_qrels(folder_in)

        def hits(batches: list[Batch]) -> int:
            return sum(nid is not None and nid in judged.get(qid, ())
                       for b in batches for qid, nid in zip(b["query_id"], b.get("negative_id", [])))

        qrels_check = {"mined_candidates": sum(1 for b in kept + rejected_batches for n in b.get("negative_id", [])
                                               if n is not None),
                       "judged_relevant_in_candidates": hits(kept + rejected_batches),
                       "judged_relevant_in_kept": hits(kept)}

    candidates = sum(candidates_step.rows.values())
    reasons_by_source: dict[str, Counter] = defaultdict(Counter)
    for b in rejected_batches:
        for src, r in zip(b.get("source", []), b.get("reason", [])):
            reasons_by_source[src][reason_key(r)] += 1
    info: dict[str, Any] = {
        "kind": "mine",
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "seconds": round(time.perf_counter() - t_start, 2),
        "output": str(folder),
        "input": {"path": str(folder_in), "split": cfg.input.split, "queries": n_queries, "pairs": batch_len(pairs),
                  "corpus_docs": len(corpus)},
        "model": backend.model if synthetic_llm else per_source.get("synthetic", {}).get("model"),
        "backend": cfg.backend if synthetic_llm else None,
        "scorer": scorer.name,
        "templates": ({t.name: {"hash": t.hash, "strategy": t.strategy, "file": t.path.name} for t in templates}
                      if synthetic_llm else {}),
        "sources": per_source,
        "counts": {
            "pairs": batch_len(pairs),
            "candidates": candidates,
            "kept": n_kept,
            "rejected": n_rejected,
            "per_source": {s: {"kept": e["kept"], "rejected": e["rejected"],
                               "rejected_by_reason": dict(reasons_by_source.get(s, {}))}
                           for s, e in per_source.items()},
            "per_strategy": per_strategy(kept, rejects),
        },
        "stages": {name: st.as_dict() for name, st in pipeline.stats.items()},
        "qrels_check": qrels_check,
        "histograms": histograms,
        "scorer_pairs": {"scored": scorer.pairs_scored, "cache_hits": scorer.cache_hits},
        "config": config_to_dict(cfg),
        "versions": package_versions(),
    }
    if synthetic_llm or cfg.validate_.judge.enabled:
        from synthgen.engines import llm_accounting

        info["llm"] = llm_accounting(cfg, backend, n_kept, candidates)
    write_json(info, folder / "run.json")
    write_card(folder, info)
    log.info("kept %d of %d candidates (%d rejected rows)", n_kept, candidates, n_rejected)
    return folder
