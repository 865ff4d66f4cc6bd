"""`synthgen config`: every config key with type, default and help; or the resolved config."""

from __future__ import annotations

from synthgen.core.config_load import load_config


def run(args) -> int:
    import yaml

    from synthgen.core.config import config_to_dict
    from synthgen.core.config_keys import render_defaults, render_explain

    if args.defaults:
        print(render_defaults())
        return 0
    current = config_to_dict(load_config(args.config, args.overrides))
    if args.explain:
        print(render_explain(args.explain, current))
        return 0
    print(yaml.safe_dump(current, sort_keys=False, allow_unicode=True).rstrip())
    return 0
