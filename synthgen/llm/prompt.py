"""prompt: templates from `synthgen/prompts/` (or `prompts.dir`) rendered (sandboxed Jinja2) into chat messages, one per row x strategy.

A template file is `<name>.j2`: a header comment holding YAML (name, description, strategy, kind, and
optionally `system`, a system message), then the user message as Jinja2. Variables: query, positive, n.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from synthgen.core.package_data import default_prompts_dir
from synthgen.core.schema import PROMPT_COLUMNS, Batch, empty_batch
from synthgen.core.step import Reject, Step, reason_columns

HEADER_OPEN, HEADER_CLOSE = "{#", "#}"
REQUIRED_KEYS = ("name", "description", "strategy")
# Variables a template can ask for in `needs:`; computed per row by the prompt step.
# answer_removed: the positive minus its answer sentences; answer_removed_variants: up to n such edits, each
# cutting deeper (both found with the scorer).
COMPUTED_VARIABLES = ("answer_removed", "answer_removed_variants")


def needs_scorer(templates) -> bool:
    """Some template asks for a variable the scorer computes."""
    return any(name in t.needs for t in templates for name in COMPUTED_VARIABLES)


class PromptError(ValueError):
    """A malformed template; the message names the file."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    description: str
    strategy: str
    kind: str  # "negative": writes hard negatives; "judge": validation questions
    engine: str  # "llm": the rendered messages go to the model; "template": the rendering IS the output
    needs: tuple[str, ...]  # computed variables the body uses, e.g. "answer_removed"
    system: str | None
    body: str
    path: Path
    hash: str  # sha256 of the file, so every row can say exactly which text produced it
    meta: dict

    def render(self, env: SandboxedEnvironment, **variables: object) -> list[dict[str, str]]:
        try:
            user = env.from_string(self.body).render(**variables).strip()
        except (TemplateError, TypeError) as exc:
            raise PromptError(f"{self.path}: cannot render: {exc}") from None
        messages = [{"role": "system", "content": self.system.strip()}] if self.system else []
        return messages + [{"role": "user", "content": user}]


def make_env() -> SandboxedEnvironment:
    # Sandboxed: templates are user-editable files and must not reach Python internals.
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


def parse_template(path: Path, env: SandboxedEnvironment | None = None) -> PromptTemplate:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped.startswith(HEADER_OPEN) or HEADER_CLOSE not in stripped:
        raise PromptError(f"{path}: must start with a {{# ... #}} header holding YAML (name, description, strategy)")
    header, body = stripped[2:].split(HEADER_CLOSE, 1)
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: header is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise PromptError(f"{path}: header must be a YAML mapping")
    missing = [k for k in REQUIRED_KEYS if not meta.get(k)]
    if missing:
        raise PromptError(f"{path}: header is missing {', '.join(missing)}")
    if meta.get("engine", "llm") not in ("llm", "template"):
        raise PromptError(f"{path}: engine must be 'llm' or 'template', not {meta['engine']!r}")
    unknown = [n for n in meta.get("needs") or () if n not in COMPUTED_VARIABLES]
    if unknown:
        raise PromptError(f"{path}: unknown computed variable {unknown[0]!r} in needs "
                          f"(known: {', '.join(COMPUTED_VARIABLES)})")
    try:
        (env or make_env()).parse(body)
    except TemplateError as exc:
        raise PromptError(f"{path}: template syntax error: {exc}") from None
    return PromptTemplate(
        name=str(meta["name"]),
        description=str(meta["description"]).strip(),
        strategy=str(meta["strategy"]),
        kind=str(meta.get("kind", "negative")),
        engine=str(meta.get("engine", "llm")),
        needs=tuple(meta.get("needs") or ()),
        system=meta.get("system"),
        body=body,
        path=path,
        hash=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        meta=meta,
    )


def load_templates(folder: str | Path | None = None, strategies: list[str] | None = None,
                   kind: str = "negative") -> list[PromptTemplate]:
    root = Path(folder) if folder else default_prompts_dir()
    if not root.is_dir():
        raise PromptError(f"prompts folder not found: {root}")
    env = make_env()
    found = [parse_template(p, env) for p in sorted(root.glob("*.j2"))]
    names = [t.name for t in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise PromptError(f"{root}: two templates share the name {sorted(dupes)[0]!r}")
    chosen = [t for t in found if t.kind == kind]
    if strategies:
        by_name = {t.name: t for t in chosen}
        unknown = [s for s in strategies if s not in by_name]
        if unknown:
            raise PromptError(f"unknown strategy {unknown[0]!r}; available: {', '.join(sorted(by_name))}")
        chosen = [by_name[s] for s in strategies]
    if not chosen:
        raise PromptError(f"{root}: no {kind!r} templates (*.j2)")
    return chosen


class PromptStep(Step):
    """Pairs in, one prompt row per (pair, strategy) out.

    Templates that need `answer_removed` get the positive minus its answer-carrying sentences (found by
    the scorer); a pair where that leaves nothing comes out as a rejected row, not a silent gap.
    """

    name = "prompt"
    reads = ("query_id", "query", "positive_id", "positive")
    writes = ("strategy", "template_hash", "messages", "engine", "source")

    def __init__(self, templates: list[PromptTemplate], negatives_per_prompt: int, scorer=None):
        self.templates = templates
        self.n = negatives_per_prompt
        self.scorer = scorer
        self.env = make_env()
        if needs_scorer(templates) and scorer is None:
            raise PromptError("a template needs answer_removed, which needs a scorer")

    def __call__(self, batch: Batch) -> Batch:
        from synthgen.negatives.edit import answer_removed_variants

        computed: dict[str, list] = {}
        if needs_scorer(self.templates):  # one scoring pass serves both variables
            variants = answer_removed_variants(batch["query"], batch["positive"], self.scorer, self.n)
            computed["answer_removed"] = [v[0] if v else None for v in variants]
            computed["answer_removed_variants"] = [v or None for v in variants]
        out = empty_batch(PROMPT_COLUMNS + ["source"])
        reasons: list[Reject | None] = []
        for i in range(len(batch["query"])):
            for t in self.templates:
                extra = {name: computed[name][i] for name in t.needs}
                missing = [name for name, v in extra.items() if v is None]
                msgs = [] if missing else t.render(self.env, query=batch["query"][i], positive=batch["positive"][i],
                                                   n=self.n, **extra)
                for col in ("query_id", "query", "positive_id", "positive"):
                    out[col].append(batch[col][i])
                out["strategy"].append(t.name)
                out["template_hash"].append(t.hash)
                out["messages"].append(json.dumps(msgs, ensure_ascii=False))
                out["engine"].append(t.engine)
                out["source"].append("synthetic")  # a not_applicable row is still a synthetic-source row
                reasons.append(Reject("not_applicable", "{field}: nothing left of the positive", field=missing[0])
                               if missing else None)
        return {**out, **reason_columns(reasons)}
