import pytest

from synthgen.core.config import ConfigError
from synthgen.core.config_load import load_config


def test_defaults():
    cfg = load_config()
    assert cfg.validate_.max_relative == 0.95
    assert cfg.llm.base_url is None and cfg.input.path is None


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("llm:\n  concurrency: 2\nvalidate:\n  max_relative: 0.9\n")
    cfg = load_config(f, ["llm.concurrency=8", "prompts.strategies=[minimal_edit]", "validate.min_score=null"])
    assert cfg.llm.concurrency == 8
    assert cfg.validate_.max_relative == 0.9
    assert cfg.prompts.strategies == ["minimal_edit"]
    assert cfg.validate_.min_score is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("llm.nope=1", "config error: llm.nope: Extra inputs are not permitted"),
        ("validate.max_relative=abc", "config error: validate.max_relative: Input should be a valid number"),
        ("llm.concurrency=0", "config error: llm.concurrency: Input should be greater than or equal to 1"),
        ("llm.base_url=http://127.0.0.1:1/v1", "llm.model is required when llm.base_url is set"),
        ("novalue", "must look like key=value"),
        ("input=3", "config error: input"),
    ],
)
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
