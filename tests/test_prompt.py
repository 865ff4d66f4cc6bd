import json

import pytest

from synthgen.core.package_data import default_prompts_dir
from synthgen.llm.prompt import PromptError, PromptStep, load_templates, make_env, parse_template

GOOD = "{#\nname: t1\ndescription: d\nstrategy: s\n#}\nQ: {{ query }} P: {{ positive }} n={{ n }}\n"


def test_shipped_templates_include_minimal_edit():
    names = {t.name for t in load_templates(default_prompts_dir())}
    assert {"minimal_edit", "topic_near", "different_aspect"} <= names


def test_render_and_hash(tmp_path):
    (tmp_path / "t1.j2").write_text(GOOD)
    (t,) = load_templates(tmp_path)
    assert t.render(make_env(), query="q?", positive="p.", n=2) == [{"role": "user", "content": "Q: q? P: p. n=2"}]
    assert len(t.hash) == 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("no header {{ query }}", "must start with a"),
        ("{#\nname: t\n#}\nbody", "header is missing description, strategy"),
        ("{#\n[1, 2\n#}\nbody", "header is not valid YAML"),
        ("{#\nname: t\ndescription: d\nstrategy: s\n#}\n{% if query %}unclosed", "template syntax error"),
    ],
)
def test_malformed_template_names_file(tmp_path, text, message):
    (tmp_path / "broken.j2").write_text(text)
    with pytest.raises(PromptError, match=message) as err:
        load_templates(tmp_path)
    assert "broken.j2" in str(err.value)


def test_undefined_variable_is_an_error(tmp_path):
    (tmp_path / "t.j2").write_text("{#\nname: t\ndescription: d\nstrategy: s\n#}\n{{ nope }}")
    (t,) = load_templates(tmp_path)
    with pytest.raises(PromptError, match="cannot render"):
        t.render(make_env(), query="q", positive="p", n=1)


def test_sandbox_blocks_python_internals(tmp_path):
    p = tmp_path / "evil.j2"
    p.write_text("{#\nname: e\ndescription: d\nstrategy: s\n#}\n{{ query.__class__.__mro__ }}")
    with pytest.raises(PromptError, match="cannot render"):
        parse_template(p).render(make_env(), query="q", positive="p", n=1)


def test_unknown_strategy(tmp_path):
    (tmp_path / "t1.j2").write_text(GOOD)
    with pytest.raises(PromptError, match="unknown strategy 'zzz'; available: t1"):
        load_templates(tmp_path, ["zzz"])


def test_prompt_step_rows(tmp_path):
    (tmp_path / "t1.j2").write_text(GOOD)
    (tmp_path / "t2.j2").write_text(GOOD.replace("name: t1", "name: t2"))
    step = PromptStep(load_templates(tmp_path), negatives_per_prompt=3)
    out = step({"query_id": ["a"], "query": ["q?"], "positive_id": ["p"], "positive": ["pp"]})
    assert out["strategy"] == ["t1", "t2"]
    assert json.loads(out["messages"][1])[-1]["content"] == "Q: q? P: pp n=3"
