"""Every config key, read from the pydantic model: for `synthgen config` and for typing `--set` values.

The model in synthgen/config.py is the only source: a key added there is listed, explained and typed here
without further edits.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

NULLS = ("null", "~", "None")


@dataclass(frozen=True)
class Key:
    key: str  # dotted, as on the command line (`validate.max_relative`)
    annotation: Any
    default: Any  # PydanticUndefined when the key has none (a required key of an optional section)
    help: str
    constraints: str

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)

    def default_text(self) -> str:
        if self.default is PydanticUndefined:
            return "(required)"
        return yaml.safe_dump(self.default, default_flow_style=True, width=10_000).strip().removesuffix("\n...")


def _args(ann: Any) -> tuple[Any, ...]:
    return typing.get_args(ann)


def _is_union(ann: Any) -> bool:
    return typing.get_origin(ann) in (typing.Union, types.UnionType)


def _section(ann: Any) -> type[BaseModel] | None:
    """The model class inside `Model` or `Model | None`, else None."""
    for a in (_args(ann) if _is_union(ann) else (ann,)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def type_name(ann: Any) -> str:
    if ann is type(None):
        return "null"
    if _is_union(ann):
        return " | ".join(type_name(a) for a in _args(ann))
    origin = typing.get_origin(ann)
    if origin is Literal:
        return " | ".join(str(a) for a in _args(ann))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in _args(ann))}]"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "{" + ", ".join(f.alias or n for n, f in ann.model_fields.items()) + "}"
    return getattr(ann, "__name__", str(ann))


def _constraints(field: Any) -> str:
    out = []
    for m in field.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "min length")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
    return ", ".join(out)


def _default(field: Any) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()
        return value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) else value
    return field.default


def iter_keys(model: type[BaseModel] | None = None, prefix: str = "") -> Iterator[Key]:
    """Every leaf key of the model, depth first, in declaration order; sections are walked, not listed."""
    if model is None:
        from synthgen.core.config import Config as model  # noqa: N813 - the root model
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        section = _section(field.annotation)
        if section is not None:
            yield from iter_keys(section, key + ".")
            continue
        yield Key(key, field.annotation, _default(field), field.description or "", _constraints(field))


def find(key: str) -> list[Key]:
    """The key itself, or every key of a section (`llm`); [] when unknown."""
    keys = list(iter_keys())
    exact = [k for k in keys if k.key == key]
    return exact or [k for k in keys if k.key.startswith(key + ".")]


def _accepts_only_text(ann: Any) -> bool:
    """str, `str | None`, or a Literal of strings: a value for it is the text as typed, never YAML-guessed."""
    parts = [a for a in (_args(ann) if _is_union(ann) else (ann,)) if a is not type(None)]
    if not parts:
        return False
    for a in parts:
        if typing.get_origin(a) is Literal:
            if not all(isinstance(v, str) for v in _args(a)):
                return False
        elif a is not str:
            return False
    return True


def _allows_none(ann: Any) -> bool:
    return ann is type(None) or (_is_union(ann) and type(None) in _args(ann))


def parse_value(key: str, raw: str) -> Any:
    """`--set key=raw`, typed by the model: text fields keep the text (`run_name=2024-11-22` stays a string);
    numbers, booleans, lists and mappings are read as YAML; empty (or `null` where allowed) is None."""
    if not raw.strip():
        return None
    match = [k for k in iter_keys() if k.key == key]
    if match and _accepts_only_text(match[0].annotation):
        if raw.strip() in NULLS and _allows_none(match[0].annotation):
            return None
        return raw
    return yaml.safe_load(raw)


def render_defaults() -> str:
    """`synthgen config --defaults`: every key with type, default and help."""
    lines = []
    for k in iter_keys():
        extra = f" ({k.constraints})" if k.constraints else ""
        lines.append(f"{k.key}: {k.type_name} = {k.default_text()}{extra}")
        if k.help:
            lines.append(f"    {k.help}")
    return "\n".join(lines)


def render_explain(key: str, current: dict[str, Any]) -> str:
    """`synthgen config --explain KEY`: a key (or each key of a section) with its value in the resolved config."""
    found = find(key)
    if not found:
        from synthgen.core.config import ConfigError

        raise ConfigError(f"config error: unknown key {key!r} (see `synthgen config --defaults`)")
    lines = []
    for k in found:
        value: Any = current
        for part in k.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        lines += [k.key, f"  type:    {k.type_name}", f"  default: {k.default_text()}",
                  f"  value:   {yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix(chr(10) + '...')}"]
        if k.constraints:
            lines.append(f"  allowed: {k.constraints}")
        if k.help:
            lines.append(f"  help:    {k.help}")
    return "\n".join(lines)
