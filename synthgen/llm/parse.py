"""parse: the model's text -> passages (JSON object, fenced or not), and the response_format per server kind."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from synthgen.core.schema import NegativePassages, json_schema_for, strict_schema


class ParseError(ValueError):
    """The model's text is not a JSON object with a non-empty list of passages."""


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_passages(text: str | None) -> list[str]:
    """Model text -> list of non-empty passages, or ParseError saying what is wrong."""
    if text is None or not text.strip():
        raise ParseError("empty completion")
    body = _FENCE.sub("", text.strip())
    try:
        # strict=False: small models put raw newlines inside strings; that is still usable text.
        data = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    if isinstance(data, list):  # a bare list is an unambiguous answer; accept it
        data = {"passages": data}
    try:
        parsed = NegativePassages.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise ParseError(f"wrong shape at {where}: {err['msg']}") from None
    passages = [p.strip() for p in parsed.passages if isinstance(p, str) and p.strip()]
    if not passages:
        raise ParseError("no non-empty passages")
    return passages


def response_format(kind: str, n: int, schema: dict[str, Any] | None = None,
                    name: str = "negatives") -> dict[str, Any] | None:
    """The `response_format` for a server kind; json_schema is sent strict (OpenAI's structured outputs)."""
    schema = json_schema_for(n) if schema is None else schema
    if kind == "json_schema":  # OpenAI, vLLM, native llama-server
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": strict_schema(schema)}}
    if kind == "json_object_schema":  # llama-cpp-python's server (rejects json_schema: HTTP 500)
        closed = dict(schema, additionalProperties=False) if schema.get("type") == "object" else schema
        return {"type": "json_object", "schema": closed}
    if kind == "json_object":
        return {"type": "json_object"}
    return None
