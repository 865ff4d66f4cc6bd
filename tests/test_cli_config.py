"""The CLI people discover things with: --version, `synthgen config`, typed --set values, current --help,
and log lines instead of progress bars when stderr is not a terminal."""

import logging
import subprocess
import sys
from importlib import metadata

import pytest
import yaml
from pydantic import BaseModel

from synthgen.cli import build_parser, main
from synthgen.core.config import Config, ConfigError
from synthgen.core.config_load import load_config


def _leaf_keys(model, prefix=""):
    """Independent walk of the pydantic model: (dotted key, default) of every leaf."""
    out = []
    for name, f in model.model_fields.items():
        key = prefix + (f.alias or name)
        inner = [a for a in getattr(f.annotation, "__args__", (f.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if inner:
            out += _leaf_keys(inner[0], key + ".")
        else:
            out.append(key)
    return out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"synthgen {metadata.version('synthgen')}"


def test_config_defaults_lists_every_key_with_type_default_and_help(capsys):
    assert main(["config", "--defaults"]) == 0
    out = capsys.readouterr().out.splitlines()
    heads = {l.split(":", 1)[0]: l for l in out if not l.startswith(" ")}
    keys = _leaf_keys(Config)
    assert len(keys) > 90 and set(keys) == set(heads)
    defaults = Config().model_dump(mode="json", by_alias=True)
    for key in keys:
        node = defaults
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None or not key.startswith("llm.price_per_million."):
            expected = yaml.safe_dump(node, default_flow_style=True, width=10_000).strip().removesuffix("\n...")
            assert f" = {expected}" in heads[key], key
    for key in keys:  # every key has a help line under it
        i = out.index(heads[key])
        assert out[i + 1].startswith("    ") and len(out[i + 1].strip()) > 5, key
    assert "llm.concurrency: int = 4 (>= 1)" in heads["llm.concurrency"]
    assert "run_name: str | null = null" == heads["run_name"]
    i = out.index(heads["validate.max_relative"])
    assert "share of its positive's score" in out[i + 1]
    assert heads["scorer.device"].startswith("scorer.device: str = auto")


def test_config_explain_and_resolved(capsys):
    assert main(["config", "--explain", "llm.max_tokens", "--set", "llm.max_tokens=64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["llm.max_tokens", "  type:    int", "  default: 256", "  value:   64"]
    assert main(["config", "--explain", "card"]) == 0
    text = capsys.readouterr().out
    assert {"card.license", "card.language", "card.source_dataset", "card.pretty_name"} <= set(text.splitlines())
    assert main(["config", "--explain", "llm.nope"]) == 2
    assert "unknown key 'llm.nope'" in capsys.readouterr().err
    assert main(["config", "--set", "run_name=2024-11-22"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["run_name"] == "2024-11-22"


@pytest.mark.parametrize("override, key, expected", [
    ("run_name=2024-11-22", "run_name", "2024-11-22"),  # YAML would make this a date
    ("run_name=123", "run_name", "123"),
    ("run_name=yes", "run_name", "yes"),  # YAML 1.1 would make this True
    ("run_name=null", "run_name", None),
    ("run_name=", "run_name", None),
    ("input.path=2024", "input.path", "2024"),
    ("llm.seed=7", "llm.seed", 7),
    ("llm.seed=null", "llm.seed", None),
    ("validate.max_relative=0.5", "validate.max_relative", 0.5),
    ("validate.judge.enabled=true", "validate.judge.enabled", True),
    ("prompts.strategies=[a, b]", "prompts.strategies", ["a", "b"]),
    ("mine.sources={bm25: 2, dense: 1}", "mine.sources", {"bm25": 2, "dense": 1}),
    ("card.language=[en, de]", "card.language", ["en", "de"]),
    ("input.format=pairs", "input.format", "pairs"),
])
def test_set_values_are_typed_by_the_model(override, key, expected):
    cfg = load_config(None, [override])
    value = cfg
    for part in key.replace("validate.", "validate_.").split("."):
        value = getattr(value, part)
    assert value == expected and type(value) is type(expected)


def test_set_bad_values_still_fail_in_one_line():
    with pytest.raises(ConfigError, match="config error: llm.seed: Input should be a valid integer"):
        load_config(None, ["llm.seed=2024-11-22"])
    with pytest.raises(ConfigError, match="config error: prompts.strategies: not valid YAML"):
        load_config(None, ["prompts.strategies=[a, b"])


def test_every_command_help_is_current():
    parser = build_parser()
    top = parser.format_help()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert f"  {name} " in top, name  # the head docstring names every command
        text = p.format_help()
        assert p.description and p.description.split(":")[0] in text
        if any(a.dest == "overrides" for a in p._actions):
            assert "synthgen config --defaults" in text
    assert "--public" in sub.choices["push"].format_help() and "hf auth login" in top + sub.choices["push"].description
    assert "tevatron-v2" in sub.choices["export"].format_help()


def test_progress_is_log_lines_when_not_a_tty(caplog):
    from synthgen.core.progress import LogProgress, progress

    assert not sys.stderr.isatty()
    with caplog.at_level(logging.INFO, logger="synthgen.core.progress"):
        with progress(3, "queries", "q") as bar:
            assert isinstance(bar, LogProgress)
            bar.every_s = 0  # a line per update
            bar.update(2)
            bar.update(1)
    assert [r.getMessage() for r in caplog.records] == ["queries: 2/3 q", "queries: 3/3 q (done)"]


def test_a_piped_run_has_no_progress_bar_junk(tmp_path):
    rows = tmp_path / "c.jsonl"
    rows.write_text(
        '{"query": "what is the boiling point of water", "positive": "Water boils at 100 degrees Celsius at sea '
        'level pressure.", "negative": "Mountains are tall landforms that rise high above the surrounding land '
        'and valleys."}\n')
    proc = subprocess.run([sys.executable, "-m", "synthgen", "validate", "--input", str(rows), "--output",
                           str(tmp_path / "v"), "--set", "validate.collision=null"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr
    assert "validate: 1/1 q (done)" in proc.stderr
