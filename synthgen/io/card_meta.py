"""The parts of the dataset card that fit the ecosystem: Hub metadata, trainer snippets, reproduction block.

Metadata: license and language from the `card:` config section (language detected from the data when not
given), task and size categories, the source dataset, and the `configs:` of the Hub layout
(synthgen/hub_layout.py). The body parts say how to train on each config and how to rebuild the run.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from synthgen.io.hub_configs import CONFIGS, DEFAULT_CONFIG, configs_yaml

log = logging.getLogger(__name__)

LANGUAGE_SAMPLE = 200  # texts read for language detection: enough for a stable majority, fast
LANGUAGE_MIN_SHARE = 0.2  # a language below this share of the sample is noise (names, formulas), not listed


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def detect_languages(texts: list[str]) -> list[str]:
    """ISO 639-1 codes covering at least LANGUAGE_MIN_SHARE of the texts (most common first); [] if unknown."""
    try:
        from langdetect import DetectorFactory, LangDetectException, detect
    except ImportError:  # the card still renders; it just cannot name the language
        log.warning("langdetect is not installed: the card's language is left out (set card.language)")
        return []
    DetectorFactory.seed = 0  # langdetect samples at random: fix it so a card is reproducible
    found: Counter = Counter()
    for text in texts[:LANGUAGE_SAMPLE]:
        try:
            found[detect(text).split("-")[0]] += 1
        except LangDetectException:  # digits only, empty
            continue
    total = sum(found.values())
    return [code for code, n in found.most_common() if total and n / total >= LANGUAGE_MIN_SHARE]


def card_settings(info: dict[str, Any]) -> dict[str, Any]:
    """The `card:` config section recorded in run.json (absent in older runs and in validate's stats.json)."""
    return dict((info.get("config") or {}).get("card") or {})


def source_dataset(info: dict[str, Any]) -> str | None:
    """A Hub dataset id or URL for the source: card.source_dataset, else input.path when it names a Hub dataset."""
    explicit = card_settings(info).get("source_dataset")
    if explicit:
        return explicit
    path = ((info.get("config") or {}).get("input") or {}).get("path")
    if isinstance(path, str) and path.count("/") == 1 and not Path(path).exists() and not path.startswith((".", "~")):
        return path
    return None


def source_link(source: str) -> str:
    return source if "://" in source else f"https://huggingface.co/datasets/{source}"


def metadata(info: dict[str, Any], name: str, kind: str, kept: int, per_source: dict[str, Any],
             configs: list[str], texts: list[str]) -> dict[str, Any]:
    settings = card_settings(info)
    languages = settings.get("language") or detect_languages(texts)
    source = source_dataset(info)
    meta: dict[str, Any] = {
        "pretty_name": settings.get("pretty_name") or f"synthgen hard negatives ({name})",
        "license": settings.get("license") or "unknown",
    }
    if languages:
        meta["language"] = list(languages)
    meta |= {
        "tags": ["synthgen", "hard-negatives", "retrieval", "sentence-transformers"]
                + (["synthetic"] if kind == "generate" or "synthetic" in per_source else []),
        "task_categories": ["sentence-similarity", "text-retrieval"],
        "task_ids": ["document-retrieval"],
        "size_categories": [size_category(kept)],
    }
    if source and "://" not in source:
        meta["source_datasets"] = [source]
    meta["configs"] = configs_yaml(configs)
    return meta


def configs_section(hub: dict[str, Any] | None, configs: list[str]) -> list[str]:
    """The configs table: columns, what each is for, rows (when the Hub layout was written)."""
    lines = ["## Configs", "", f"`load_dataset(repo, NAME, split=\"train\")`; `{DEFAULT_CONFIG}` is the default.", "",
             "| config | columns | for | rows |", "|---|---|---|---|"]
    for name in configs:
        columns, purpose = CONFIGS[name]
        rows = (hub or {}).get(name, {}).get("rows", "–")
        lines.append(f"| `{name}` | {columns} | {purpose} | {rows} |")
    return lines + [""]


def trainer_snippets(repo: str = "<repo-id>") -> list[str]:
    return [
        "## Training", "",
        "**sentence-transformers** (`SentenceTransformerTrainer` + `MultipleNegativesRankingLoss`). Rows of one "
        "query sit together and a query has several positives: `NO_DUPLICATES` keeps them out of each other's "
        "in-batch negatives.", "",
        "```python", "from datasets import load_dataset",
        "from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, "
        "SentenceTransformerTrainingArguments",
        "# sentence-transformers >= 6 also has these under sentence_transformers.sentence_transformer.*",
        "from sentence_transformers.losses import MultipleNegativesRankingLoss",
        "from sentence_transformers.training_args import BatchSamplers", "",
        f"train = load_dataset(\"{repo}\", \"triplet\", split=\"train\")  # or \"n-tuple\"",
        "model = SentenceTransformer(\"sentence-transformers/all-MiniLM-L6-v2\")",
        "args = SentenceTransformerTrainingArguments(output_dir=\"out\", batch_sampler=BatchSamplers.NO_DUPLICATES)",
        "SentenceTransformerTrainer(model=model, args=args, train_dataset=train,",
        "                           loss=MultipleNegativesRankingLoss(model)).train()",
        "```", "",
        "`pair-score` trains with `CoSENTLoss`/`AnglELoss`, `pair-label` with `ContrastiveLoss`, `margin-mse` with "
        "`MarginMSELoss`, the same way.", "",
        "**FlagEmbedding** reads `flagembedding/train.jsonl` (`query`, `pos`, `neg`, and `pos_scores`/`neg_scores` "
        "when every passage was scored):", "",
        "```bash",
        f"hf download {repo} --repo-type dataset --include 'flagembedding/*' --local-dir data",
        "torchrun --nproc_per_node 1 -m FlagEmbedding.finetune.embedder.encoder_only.base \\",
        "    --model_name_or_path BAAI/bge-base-en-v1.5 --train_data data/flagembedding/train.jsonl \\",
        "    --train_group_size 2 --output_dir out",
        "```", "",
        "**Tevatron** (v2 layout: ids in `tevatron/train.jsonl`, texts in `tevatron/corpus.jsonl`):", "",
        "```bash",
        f"hf download {repo} --repo-type dataset --include 'tevatron/*' --local-dir data",
        "python -m tevatron.retriever.driver.train --model_name_or_path bert-base-uncased --output_dir out \\",
        "    --dataset_name json --dataset_path data/tevatron/train.jsonl \\",
        "    --corpus_name json --corpus_path data/tevatron/corpus.jsonl --train_group_size 2",
        "```", "",
    ]


def reproduction_section(info: dict[str, Any], kind: str) -> list[str]:
    """The command, the resolved config (a file that rebuilds the run) and the package versions."""
    config = info.get("config") or {}
    if kind == "validate":
        command = (f"synthgen validate --input {info.get('input', '<input>')} --output <folder> "
                   "--config config.yaml")
        config = {"validate": config}
    else:
        command = f"synthgen {kind} --config config.yaml"
    versions = info.get("versions") or {}
    lines = ["## Reproduction", "",
             "Save the resolved config below as `config.yaml` and run, with the package versions listed:", "",
             "```bash", f"pip install synthgen=={versions.get('synthgen', '<version>')}", command, "```", "",
             "```yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip() or "{}", "```", ""]
    if versions:
        lines += ["| package | version |", "|---|---|"] + [f"| {k} | {v} |" for k, v in versions.items()] + [""]
    return lines
