"""`synthgen prompts`: list the strategies, or show what one sends for the first input row."""

from __future__ import annotations

from synthgen.core.config_load import load_config


def run(args) -> int:
    import json

    from synthgen.io.read import load_input
    from synthgen.llm.prompt import PromptStep, load_templates

    cfg = load_config(args.config, args.overrides)
    if not args.render:
        for kind in ("negative", "query", "judge"):
            for t in load_templates(cfg.prompts.dir, kind=kind):
                print(f"{kind:8s} {t.name:20s} {t.hash}  {t.strategy}: {t.description}")
        return 0
    (t,) = load_templates(cfg.prompts.dir, [args.render])
    pairs = load_input(cfg.input)
    first = {c: v[:1] for c, v in pairs.items()}
    scorer = None
    if t.needs:
        from synthgen.validate.load import load_scorer

        scorer = load_scorer(cfg.scorer)
    row = PromptStep([t], cfg.prompts.negatives_per_prompt, scorer)(first)
    if row["reason"][0]:
        print(f"{t.name} does not apply to the first row: {row['reason'][0]}")
        return 0
    print(f"# engine: {t.engine}" + (" (this text is the output; no LLM call)" if t.engine == "template" else ""))
    print(json.dumps(json.loads(row["messages"][0]), indent=2, ensure_ascii=False))
    return 0
