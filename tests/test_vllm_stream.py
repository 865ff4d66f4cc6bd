"""The vLLM backend's per-request loop (llm/vllm_stream.py) on a scripted engine: which prompt is reported when,
what is resubmitted with which attempt, and the accounting. The real engine runs in test_vllm_slow.py."""

import json
from types import SimpleNamespace

import pytest

from synthgen.llm.backend import LLMUsage
from synthgen.llm.parse import parse_passages
from synthgen.llm.server import ServerError
from synthgen.llm.vllm_stream import stream

GOOD = json.dumps({"passages": ["A passage about tides."]})
BAD = '{"passages": ["cut off'


class ScriptedEngine:
    """Requests finish after a fixed number of steps each; `texts[(index, attempt)]` is what the model wrote."""

    def __init__(self, steps: dict[int, int], texts: dict[tuple[int, int], str], refuse=(), fail_at=None):
        self.steps, self.texts, self.refuse, self.fail_at = steps, texts, set(refuse), fail_at
        self.now = 0
        self.queued: dict[str, tuple[int, int, int]] = {}  # request id -> (index, attempt, finishes at step)
        self.submitted: list[tuple[int, int, int]] = []  # (step, index, attempt)
        self.aborted: list[int] = []  # indexes of the prompts whose requests were aborted

    def submit(self, index, attempt):
        if index in self.refuse:
            raise ValueError(f"prompt {index} is longer than max_model_len")
        self.submitted.append((self.now, index, attempt))
        request_id = f"{len(self.submitted)}"
        self.queued[request_id] = (index, attempt, self.now + self.steps[index])
        return request_id

    def unfinished(self):
        return bool(self.queued)

    def step(self):
        self.now += 1
        if self.fail_at is not None and self.now == self.fail_at[0]:
            raise self.fail_at[1]
        done = [rid for rid, (_, _, at) in self.queued.items() if at <= self.now]
        out = []
        for rid in done:
            index, attempt, _ = self.queued.pop(rid)
            text = self.texts[(index, attempt)]
            out.append(SimpleNamespace(request_id=rid, prompt_token_ids=[1] * 10, outputs=[
                SimpleNamespace(text=text, token_ids=[2] * len(text), finish_reason="stop")]))
        # another caller's request finishing in the same step is not ours to report
        out.append(SimpleNamespace(request_id="someone-else", prompt_token_ids=[], outputs=[]))
        return out

    def abort(self, request_ids):
        self.aborted.extend(self.queued.pop(rid)[0] for rid in request_ids)


def run(engine, count, max_retries=2):
    usage, reported = LLMUsage(), []

    def on_done(i, values, error):
        # when it was reported, and how many requests were still in the engine then
        reported.append((engine.now, i, values, error, len(engine.queued)))

    stream(engine, count, parse_passages, max_retries, usage, on_done)
    return usage, reported


def test_each_prompt_is_reported_the_step_it_finishes_while_the_rest_still_run():
    engine = ScriptedEngine({0: 5, 1: 1, 2: 3}, {(0, 0): GOOD, (1, 0): GOOD, (2, 0): GOOD})
    usage, reported = run(engine, 3)
    assert [(step, i, left) for step, i, _, _, left in reported] == [(1, 1, 2), (3, 2, 1), (5, 0, 0)]
    assert all(values == [["A passage about tides."]] and error is None for _, _, values, error, _ in reported)
    assert [(s, i, a) for s, i, a in engine.submitted] == [(0, 0, 0), (0, 1, 0), (0, 2, 0)]  # all at once
    assert (usage.requests, usage.retries, usage.failures, usage.errors) == (3, 0, 0, {})
    assert usage.prompt_tokens == 30 and usage.completion_tokens == 3 * len(GOOD)


def test_an_unparseable_answer_is_resubmitted_at_once_with_the_next_attempt():
    engine = ScriptedEngine({0: 2, 1: 6}, {(0, 0): BAD, (0, 1): GOOD, (1, 0): GOOD})
    usage, reported = run(engine, 2)
    # prompt 0's retry goes in the step its first answer came back, while prompt 1 is still decoding
    assert engine.submitted == [(0, 0, 0), (0, 1, 0), (2, 0, 1)]
    assert [(step, i, error) for step, i, _, error, _ in reported] == [(4, 0, None), (6, 1, None)]
    assert (usage.requests, usage.retries, usage.failures) == (3, 1, 0)


def test_a_prompt_that_never_parses_fails_after_the_retries_with_the_parse_error():
    engine = ScriptedEngine({0: 1, 1: 1}, {(0, 0): BAD, (0, 1): BAD, (0, 2): BAD, (1, 0): GOOD})
    usage, reported = run(engine, 2, max_retries=2)
    assert [a for _, i, a in engine.submitted if i == 0] == [0, 1, 2]
    (_, i, values, error, _), = [r for r in reported if r[1] == 0]
    assert values == [] and error.startswith("ParseError")
    assert (usage.requests, usage.retries, usage.failures, usage.errors) == (4, 2, 1, {"ParseError": 1})


def test_a_refused_prompt_is_reported_before_any_step_and_not_retried():
    engine = ScriptedEngine({0: 1, 1: 2}, {(1, 0): GOOD}, refuse={0})
    usage, reported = run(engine, 2)
    assert reported[0][:2] == (0, 0) and reported[0][3] == "ValueError: prompt 0 is longer than max_model_len"
    assert [i for _, i, _ in engine.submitted] == [1]
    assert (usage.requests, usage.failures, usage.errors) == (2, 1, {"ValueError": 1})


def test_an_interrupt_keeps_what_was_reported_and_aborts_the_rest():
    engine = ScriptedEngine({0: 1, 1: 9, 2: 9}, {(0, 0): GOOD}, fail_at=(2, KeyboardInterrupt()))
    reported = []
    with pytest.raises(KeyboardInterrupt):
        stream(engine, 3, parse_passages, 2, LLMUsage(), lambda i, v, e: reported.append(i))
    assert reported == [0]
    assert sorted(engine.aborted) == [1, 2] and not engine.queued


def test_a_dead_engine_stops_the_run_with_one_line():
    dead = type("EngineDeadError", (RuntimeError,), {})("engine core died")
    engine = ScriptedEngine({0: 5}, {}, fail_at=(1, dead))
    with pytest.raises(ServerError, match="the vLLM engine died"):
        run(engine, 1)
    assert engine.aborted == [0]


def test_a_request_the_engine_dropped_is_a_failure_not_a_hang():
    engine = ScriptedEngine({0: 1, 1: 3}, {(0, 0): GOOD, (1, 0): GOOD})
    real_step = engine.step

    def losing_step():
        out = real_step()
        engine.queued.clear()  # the engine forgot prompt 1
        return out

    engine.step = losing_step
    usage, reported = run(engine, 2)
    assert [(i, error) for _, i, _, error, _ in reported] == [(0, None), (1, "no output (the engine dropped the request)")]
    assert usage.failures == 1


def test_an_interrupt_while_queueing_aborts_what_was_already_queued():
    class InterruptedAtThird(ScriptedEngine):
        def submit(self, index, attempt):
            if index == 2:
                raise KeyboardInterrupt
            return super().submit(index, attempt)

    engine = InterruptedAtThird({0: 1, 1: 1, 2: 1}, {})
    with pytest.raises(KeyboardInterrupt):
        run(engine, 3)
    assert sorted(engine.aborted) == [0, 1] and engine.now == 0
