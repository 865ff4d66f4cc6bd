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

import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from synthgen.core.config import MineConfig
from synthgen.core.schema import CANDIDATE_COLUMNS, OPTIONAL_COLUMNS, Batch, batch_len, concat_batches, empty_batch
from synthgen.core.step import Step
from synthgen.llm.generate import GenerateStep
from synthgen.negatives.corpus import Corpus
from synthgen.negatives.miners.base import Miner
from synthgen.validate.dedup import CopyIndex, normalise

log = logging.getLogger(__name__)

ROW_COLUMNS = CANDIDATE_COLUMNS + OPTIONAL_COLUMNS + ["reason"]


# --------------------------------------------------------------------------------------------- corpus
def _group_by_query(batch: Batch) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, qid in enumerate(batch["query_id"]):
        groups.setdefault(qid, []).append(i)
    return groups


class MinedSource(Step):
    """Pairs in, up to `k` mined candidates per pair out, positives and their near-copies excluded."""

    reads = ("query_id", "query", "positive_id", "positive")
    writes = tuple(ROW_COLUMNS)
    counters = ("examined", "excluded", "short_pairs")

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
            same = cfg.deal == "same"
            limit = cfg.range_max if miner.windowed else (1 if same else len(rows)) * cfg.k
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
            repeats = min(cfg.reuse or len(rows), len(rows))  # no limit: at most every positive
            for j, i in enumerate(rows):
                # Round-robin: each positive gets distinct, equally hard ones; when the window is short a
                # passage serves up to `reuse` positives of the query (its repeats come after every first use).
                mine = window[:cfg.k] if same else (window * repeats)[j::len(rows)][:cfg.k]
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
                    for col in ("positive_score", "negative_score", "difficulty", "score_origin", "reason"):
                        out[col].append(None)
        return out


class SyntheticLLM(Step):
    """The `generate` stage as a candidate source (scorer: for answer_removed; cache: resume, as in generate)."""

    name = "synthetic"
    reads = ("query_id", "query", "positive_id", "positive")
    writes = tuple(CANDIDATE_COLUMNS)
    counters = tuple(f"generate.{c}" for c in GenerateStep.counters)

    def __init__(self, templates, backend, scorer=None, cache=None):
        from synthgen.llm.prompt import PromptStep

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
    reads = ("query_id", "query", "positive_id", "positive")
    writes = tuple(ROW_COLUMNS)

    def __init__(self, path: str | Path):
        from synthgen.io.candidates import load_candidates

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
                    elif col in ("positive_score", "negative_score", "difficulty", "score_origin", "reason"):
                        out[col].append(None)  # validated again, with this run's thresholds
                    else:
                        out[col].append(self.rows.get(col, [None] * batch_len(self.rows))[j])
                if not out["source"][-1]:
                    out["source"][-1] = "synthetic"
        return out


class CandidateSources(Step):
    """Runs every source over the same pairs and concatenates their candidates (sources in a fixed order)."""

    name = "candidates"
    reads = ("query_id", "query", "positive_id", "positive")
    writes = tuple(ROW_COLUMNS)
    counters = ("rows", "seconds")

    def __init__(self, sources: list[Step], after_setup: Callable[[], None] | None = None):
        self.sources = sources
        self.after_setup = after_setup  # e.g. hand the dense miner's corpus embeddings to the scorer
        self.counters = ("rows", "seconds", *(f"sources.{i}.{c}" for i, s in enumerate(sources)
                                              for c in getattr(s, "counters", ())))
        self.rows: Counter = Counter()
        self.seconds: Counter = Counter()

    def setup(self) -> None:
        for s in self.sources:
            t0 = time.perf_counter()
            s.setup()
            self.seconds[s.name] += time.perf_counter() - t0
        if self.after_setup is not None:
            self.after_setup()

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
