"""Token and cost arithmetic (synthgen/accounting.py) and backend selection errors: fast, no engine."""

import contextlib
import importlib.util
from types import SimpleNamespace

import pytest

from synthgen.core.config_load import load_config
from synthgen.llm.accounting import Price, cost, summarize
from synthgen.llm.server import ServerError

USAGE = {"requests": 12, "retries": 2, "failures": 1, "prompt_tokens": 3000, "completion_tokens": 1000,
         "errors": {"ParseError": 1}}


def test_cost_is_per_million_tokens():
    assert cost(1_000_000, 0, Price(0.15, 0.6)) == pytest.approx(0.15)
    assert cost(2_000_000, 500_000, Price(0.15, 0.6)) == pytest.approx(0.3 + 0.3)
    assert cost(0, 0, Price(1, 1)) == 0


def test_negative_prices_are_rejected():
    with pytest.raises(ValueError):
        Price(-1, 0)


def test_summary_rates_without_price():
    out = summarize(USAGE, accepted=8, candidates=20)
    # the usage counters pass through unchanged
    assert {k: out[k] for k in USAGE} == USAGE
    assert out["total_tokens"] == 4000
    assert out["tokens_per_accepted_negative"] == 500.0
    assert out["completion_tokens_per_accepted_negative"] == 125.0
    assert out["accepted_negatives_per_1k_tokens"] == 2.0
    assert out["acceptance_rate"] == 0.4
    assert out["cost"] is None


def test_summary_with_price():
    out = summarize(USAGE, accepted=8, price=Price(prompt=0.5, completion=2.0, currency="EUR"))
    c = out["cost"]
    assert c["currency"] == "EUR"
    assert c["prompt"] == pytest.approx(0.0015) and c["completion"] == pytest.approx(0.002)
    assert c["total"] == pytest.approx(0.0035)
    assert c["per_accepted_negative"] == pytest.approx(0.0035 / 8)
    assert c["per_1k_accepted_negatives"] == pytest.approx(0.4375)


def test_nothing_accepted_gives_none_not_a_crash():
    out = summarize({"prompt_tokens": 10, "completion_tokens": 5}, accepted=0, price=Price(1, 1), candidates=0)
    assert out["tokens_per_accepted_negative"] is None
    assert out["accepted_negatives_per_1k_tokens"] == 0.0
    assert out["acceptance_rate"] is None
    assert out["cost"]["per_accepted_negative"] is None and out["cost"]["total"] == pytest.approx(15e-6)
    empty = summarize({}, accepted=0)
    assert empty["total_tokens"] == 0 and empty["accepted_negatives_per_1k_tokens"] is None
    with pytest.raises(ValueError):
        summarize(USAGE, accepted=-1)


def test_price_table_in_config_reaches_run_json_block():
    from synthgen.llm.engines import llm_accounting

    cfg = load_config(None, ["llm.price_per_million={prompt: 1.0, completion: 4.0}"])
    backend = SimpleNamespace(usage=SimpleNamespace(as_dict=lambda: dict(USAGE)), concurrency=6)
    out = llm_accounting(cfg, backend, accepted=4, candidates=10)
    assert out["backend"] == "openai" and out["concurrency"] == 6
    assert out["cost"]["total"] == pytest.approx(0.003 + 0.004)
    assert out["tokens_per_accepted_negative"] == 1000.0


def test_unreachable_server_is_one_line_server_error():
    from synthgen.llm.engines import build_backend

    cfg = load_config(None, ["llm.base_url=http://127.0.0.1:9/v1", "llm.model=m"])
    with contextlib.ExitStack() as stack, pytest.raises(ServerError) as err:
        build_backend(cfg, stack, prompts_per_batch=8)
    msg = str(err.value)
    assert "\n" not in msg and "cannot reach" in msg and "llm.base_url" in msg


def test_vllm_server_gets_a_full_batch_in_flight(monkeypatch):
    from synthgen.llm import engines

    monkeypatch.setattr(engines, "probe_server", lambda *a, **k: [{"id": "tiny", "owned_by": "vllm"}])
    with contextlib.ExitStack() as stack:
        cfg = load_config(None, ["llm.base_url=http://127.0.0.1:9/v1", "llm.model=tiny"])
        backend = engines.build_backend(cfg, stack, prompts_per_batch=24)
        assert backend.cfg.concurrency == 24 and backend.endpoint == cfg.llm.base_url
        assert backend.passages_per_prompt == cfg.prompts.negatives_per_prompt
        explicit = load_config(None, ["llm.base_url=http://127.0.0.1:9/v1", "llm.model=tiny", "llm.concurrency=3"])
        assert engines.build_backend(explicit, stack, prompts_per_batch=24).cfg.concurrency == 3
        wrong = load_config(None, ["llm.base_url=http://127.0.0.1:9/v1", "llm.model=other"])
        with pytest.raises(ServerError, match="set llm.model"):
            engines.build_backend(wrong, stack, prompts_per_batch=24)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_missing_is_one_line_with_the_fix():
    from synthgen.llm.engines import build_backend

    cfg = load_config(None, ["backend=vllm"])
    with contextlib.ExitStack() as stack, pytest.raises(ServerError) as err:
        build_backend(cfg, stack, prompts_per_batch=8)
    assert "make install-vllm" in str(err.value) and "\n" not in str(err.value)


def test_auto_response_format_follows_the_server():
    from synthgen.llm.engines import auto_response_format

    llama_cpp_python = [{"id": "m", "object": "model", "owned_by": "me", "permissions": []}]
    assert auto_response_format(llama_cpp_python) == "json_object_schema"
    assert auto_response_format([{"id": "m", "owned_by": "vllm"}]) == "json_schema"
    assert auto_response_format([{"id": "m", "owned_by": "llamacpp"}]) == "json_schema"
    assert auto_response_format([]) == "json_schema"  # a server that does not list its models
