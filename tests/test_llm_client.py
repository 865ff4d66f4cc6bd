"""The OpenAI-compatible client against the real embedded llama.cpp server (through a recording proxy):
strict structured outputs, max_completion_tokens with a fallback to max_tokens, retries on 408/409."""

import json

import pytest

from synthgen.core.config import LLMConfig
from synthgen.core.schema import json_schema_for, strict_schema
from synthgen.llm.openai_backend import OpenAIBackend
from synthgen.llm.parse import response_format
from synthgen.llm.queries import QUERY_SCHEMA
from synthgen.validate.judge import JUDGE_SCHEMA
from tests.fault_proxy import FaultProxy

PROMPT = [{"role": "user", "content": "Write one sentence about ocean tides. Return JSON: {\"passages\": [\"...\"]}"}]


def _closed(node):
    """Every object node is closed and requires all its properties (OpenAI's strict mode rules)."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert sorted(node["required"]) == sorted(node.get("properties", {}))
        assert "minLength" not in node
        for v in node.values():
            _closed(v)


@pytest.mark.parametrize("schema", [json_schema_for(3), JUDGE_SCHEMA, QUERY_SCHEMA])
def test_json_schema_is_sent_strict(schema):
    fmt = response_format("json_schema", 3, schema)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    _closed(fmt["json_schema"]["schema"])
    assert fmt["json_schema"]["schema"]["properties"].keys() == schema["properties"].keys()
    assert strict_schema(json_schema_for(3))["properties"]["passages"]["maxItems"] == 3


def _backend(url, model, token_param=None, kind="json_object_schema", **cfg):
    cfg = {"max_tokens": 48, "max_retries": 2, "timeout_s": 60.0} | cfg
    return OpenAIBackend(LLMConfig(**cfg), url, model, kind, 1, token_param)


def test_closed_schema_and_max_completion_tokens_reach_the_real_server(llama_server):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=0) as proxy:
        backend = _backend(proxy.base_url, llama_server.model_name)
        try:
            (comp,) = backend.complete([PROMPT])
        finally:
            backend.close()
    assert comp.error is None and comp.passages
    (body,) = proxy.bodies
    assert body["max_completion_tokens"] == 48 and "max_tokens" not in body
    assert body["response_format"]["schema"]["additionalProperties"] is False
    assert backend.usage.requests == 1


def test_token_param_per_server():
    from synthgen.core.config_load import load_config
    from synthgen.llm.engines import token_param

    cfg = load_config()
    assert token_param(cfg, [{"id": "m", "owned_by": "me"}]) == "max_tokens"  # llama-cpp-python ignores the new name
    assert token_param(cfg, [{"id": "m", "owned_by": "vllm"}]) is None and token_param(cfg, []) is None
    forced = load_config(None, ["llm.token_param=max_completion_tokens"])
    assert token_param(forced, [{"owned_by": "me"}]) == "max_completion_tokens"


def test_a_server_that_ignores_max_completion_tokens_gets_max_tokens(llama_server):
    """llama-cpp-python accepts max_completion_tokens and drops it: the usage shows the cap was not honoured."""
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=0) as proxy:
        backend = _backend(proxy.base_url, llama_server.model_name, max_tokens=4, max_retries=0, concurrency=1)
        try:
            first, second = backend.complete([PROMPT, PROMPT])
        finally:
            backend.close()
    assert first.passages  # the uncapped answer is whole JSON
    assert backend.token_param == "max_tokens"
    assert proxy.bodies[0]["max_completion_tokens"] == 4 and proxy.bodies[1] == {
        **{k: v for k, v in proxy.bodies[0].items() if k != "max_completion_tokens"}, "max_tokens": 4}
    assert second.passages is None and "ParseError" in second.error  # capped at 4 tokens: cut-off JSON


def test_falls_back_to_max_tokens_when_the_server_refuses_max_completion_tokens(llama_server):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=0, refuse_params=("max_completion_tokens",)) as proxy:
        backend = _backend(proxy.base_url, llama_server.model_name, concurrency=1)
        try:
            comps = backend.complete([PROMPT, PROMPT])
        finally:
            backend.close()
    assert all(c.error is None and c.passages for c in comps), [c.error for c in comps]
    assert backend.token_param == "max_tokens"
    # One refused request, then max_tokens for this one and every later one; no retry was spent on it.
    assert ["max_completion_tokens" in b for b in proxy.bodies] == [True, False, False]
    assert [b.get("max_tokens") for b in proxy.bodies[1:]] == [48, 48]
    assert backend.usage.retries == 0 and backend.usage.requests == 3


def test_an_unrelated_400_is_not_retried_nor_taken_for_a_parameter_problem(llama_server):
    upstream = llama_server.base_url.removesuffix("/v1")
    with FaultProxy(upstream, period=0, refuse_params=("messages",)) as proxy:
        backend = _backend(proxy.base_url, llama_server.model_name)
        try:
            (comp,) = backend.complete([PROMPT])
        finally:
            backend.close()
    assert comp.passages is None and comp.error.startswith("BadRequestError")
    assert len(proxy.bodies) == 1 and backend.token_param is None and backend.usage.retries == 0
    assert json.loads(json.dumps(proxy.bodies[0]))["max_completion_tokens"] == 48
