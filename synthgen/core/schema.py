"""The contract between stages: column names, pydantic row models and the Arrow schemas written to disk.

Stages pass *batches*: a dict of equal-length lists keyed by column name (what `datasets.map(batched=True)`
and Ray Data's `map_batches` hand to a function). A filter adds a `reason` column: None keeps the row.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

Batch = dict[str, list[Any]]

# Output of `read`: one row per (query, positive passage).
PAIR_COLUMNS = ["query_id", "query", "positive_id", "positive"]
# Added by `prompt`.
PROMPT_COLUMNS = PAIR_COLUMNS + ["strategy", "template_hash", "messages", "engine"]
# A candidate negative, as it flows through generate -> validate -> dedup -> write.
CANDIDATE_FIELDS: list[pa.Field] = [
    pa.field("query_id", pa.string()),
    pa.field("query", pa.string()),
    pa.field("positive_id", pa.string()),
    pa.field("positive", pa.string()),
    pa.field("negative", pa.string()),
    pa.field("source", pa.string()),
    pa.field("strategy", pa.string()),
    pa.field("template_hash", pa.string()),
    pa.field("model", pa.string()),
    pa.field("positive_score", pa.float64()),
    pa.field("negative_score", pa.float64()),
    pa.field("difficulty", pa.float64()),
]
CANDIDATE_COLUMNS = [f.name for f in CANDIDATE_FIELDS]
# Optional columns a stage may fill (None elsewhere): the corpus id of a mined negative (`synthgen mine`), and the
# score difficulty is measured from when it is not 0 (validate.score_origin: random, the query's random floor).
OPTIONAL_FIELDS: list[pa.Field] = [pa.field("negative_id", pa.string()), pa.field("score_origin", pa.float64())]
OPTIONAL_COLUMNS = [f.name for f in OPTIONAL_FIELDS]

# What trainers read: sentence-transformers takes the first three columns as (anchor, positive, negative).
_TEXT = ("query", "positive", "negative")
TRIPLET_SCHEMA = pa.schema(
    [pa.field("anchor", pa.string()), pa.field("positive", pa.string()), pa.field("negative", pa.string())]
    + [f for f in CANDIDATE_FIELDS if f.name not in _TEXT] + OPTIONAL_FIELDS
)
# Rejects: the step that dropped the row, the human reason, its rule and the numbers that fired it (JSON).
REJECT_SCHEMA = pa.schema(
    list(TRIPLET_SCHEMA) + [pa.field("stage", pa.string()), pa.field("reason", pa.string()),
                            pa.field("rule", pa.string()), pa.field("details", pa.string())]
)


class Pair(BaseModel):
    """A query with one positive passage."""

    query_id: str
    query: str
    positive_id: str
    positive: str


class NegativePassages(BaseModel):
    """What the LLM must return: a JSON object with a list of passages."""

    passages: list[str] = Field(min_length=1)


def json_schema_for(n: int) -> dict[str, Any]:
    """JSON schema sent to the server to constrain decoding to `n` passages."""
    return {
        "type": "object",
        "properties": {
            "passages": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "maxItems": n,
            }
        },
        "required": ["passages"],
    }


# Keywords OpenAI's strict structured outputs reject (its documented subset); parsing checks them instead.
STRICT_UNSUPPORTED = ("minLength", "maxLength")


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema in the form OpenAI's `strict: true` demands: every object closed (`additionalProperties:
    false`) with every property required, unsupported keywords dropped. Other servers take it as it is."""
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) if isinstance(v, dict) else v for k, v in schema.items() if k not in STRICT_UNSUPPORTED}
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: strict_schema(v) for k, v in schema["properties"].items()}
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def empty_batch(columns: list[str]) -> Batch:
    return {c: [] for c in columns}


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def concat_batches(batches: list[Batch], columns: list[str]) -> Batch:
    out = empty_batch(columns)
    for b in batches:
        n = batch_len(b)
        for c in columns:
            out[c].extend(b.get(c, [None] * n))
    return out


def take(batch: Batch, indices: list[int]) -> Batch:
    return {c: [v[i] for i in indices] for c, v in batch.items()}


def positives_by_query(pairs: Batch) -> dict[str, list[str]]:
    """Every distinct positive passage of each query, in input order."""
    out: dict[str, list[str]] = {}
    for qid, pos in zip(pairs["query_id"], pairs["positive"]):
        if pos not in out.setdefault(qid, []):
            out[qid].append(pos)
    return out
