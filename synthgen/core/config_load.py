"""Loading the one config: YAML file, then dotted --set overrides typed by their key, validated into `Config`
with one-line errors (and a did-you-mean for misspelt keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from synthgen.core.config import Config, ConfigError


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _did_you_mean(loc: tuple) -> str:
    """' (did you mean 'llm.temperature'?)' for an unknown key close to a known one, else ''."""
    import difflib

    model: Any = Config
    for part in loc[:-1]:
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        ann = getattr(fields.get(str(part)), "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return ""
        model = ann
    known = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean {'.'.join([*map(str, loc[:-1]), close[0]])!r}?)" if close else ""


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    key = key.replace("validate_", "validate")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    hint = _did_you_mean(first["loc"]) if first["type"] == "extra_forbidden" else ""
    return f"config error: {key}: {first['msg']}{hint}{more}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """YAML file (optional) + `key=value` overrides (typed by the model, see config_keys) -> validated Config."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config error: file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config error: {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config error: {p} must hold a mapping of keys")
        tree = loaded
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"config error: override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        from synthgen.core.config_keys import parse_value

        try:
            value = parse_value(key.strip(), raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config error: {key.strip()}: not valid YAML: {str(exc).splitlines()[0]}") from None
        _set_dotted(tree, key.strip(), value)
    try:
        return Config.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None
