"""Parsing of model output (canned text is fine here: this tests the parser, not the model)."""

import pytest

from synthgen.llm.parse import ParseError, parse_passages, response_format


def test_parses_object_with_passages():
    assert parse_passages('{"passages": ["one passage.", "  two  "]}') == ["one passage.", "two"]


def test_strips_code_fence():
    assert parse_passages('```json\n{"passages": ["a b c"]}\n```') == ["a b c"]


def test_accepts_bare_list():
    assert parse_passages('["x y", "z"]') == ["x y", "z"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty completion"),
        (None, "empty completion"),
        ('{"passages": ["unterminated', "invalid JSON"),
        ('{"text": "no passages key"}', "wrong shape at passages"),
        ('{"passages": "a string, not a list"}', "wrong shape at passages"),
        ('{"passages": []}', "wrong shape at passages"),
        ('{"passages": ["  ", ""]}', "no non-empty passages"),
        ('{"passages": [1, 2]}', "wrong shape"),
    ],
)
def test_bad_output_raises_parse_error(text, message):
    with pytest.raises(ParseError, match=message):
        parse_passages(text)


def test_response_formats_carry_schema_with_n():
    js = response_format("json_schema", 3)
    assert js["type"] == "json_schema"
    assert js["json_schema"]["schema"]["properties"]["passages"]["maxItems"] == 3
    assert response_format("json_object_schema", 2)["schema"]["properties"]["passages"]["maxItems"] == 2
    assert response_format("none", 2) is None
