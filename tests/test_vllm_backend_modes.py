"""VLLMBackend.complete/ask over a scripted stand-in for `vllm.LLM` (enqueue_chat + llm_engine.step): how the
two `vllm.multi` modes turn samples into passages, what is cached as a failure, and the accounting. The real
engine runs in test_vllm_slow.py (make test-slow); this covers the mode logic without vLLM installed."""

import json
from types import SimpleNamespace

from synthgen.core.config import LLMConfig, VLLMConfig
from synthgen.llm.vllm_backend import VLLMBackend


class ScriptedLLM:
    """Each enqueued conversation finishes on the next engine step with `params.n` samples written by
    `write(user text, attempt, sample index)`; ids come back with vLLM's random suffix appended."""

    def __init__(self, write):
        self.write, self.queue, self.attempts, self.next_id = write, {}, {}, 0
        self.llm_engine = SimpleNamespace(step=self._step, has_unfinished_requests=lambda: bool(self.queue),
                                          abort_request=lambda ids, internal=False: None)

    def enqueue_chat(self, conversations, params, use_tqdm=False):
        (conv,) = conversations
        user = conv[-1]["content"]
        attempt = self.attempts.get(user, 0)
        self.attempts[user] = attempt + 1
        self.next_id += 1
        self.queue[str(self.next_id)] = (user, attempt, params.n)
        return [f"{self.next_id}-a1b2c3d4"]

    def _step(self):
        done, self.queue = self.queue, {}
        return [SimpleNamespace(request_id=rid, finished=True, prompt_token_ids=[0] * 7, outputs=[
            SimpleNamespace(text=(t := self.write(user, attempt, k)), token_ids=[0] * len(t), finish_reason="stop")
            for k in range(n)]) for rid, (user, attempt, n) in done.items()]


def backend(multi: str, n: int, write, max_retries: int = 1) -> tuple[VLLMBackend, ScriptedLLM]:
    b = VLLMBackend(LLMConfig(max_retries=max_retries, seed=7), VLLMConfig(multi=multi), n)
    b._llm = ScriptedLLM(write)  # open() keeps an engine that is already there
    b.sampling_params = lambda schema, max_tokens, temperature, samples=1, attempt=0: SimpleNamespace(n=samples)
    return b, b._llm


def prompt(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def passages(*texts: str) -> str:
    return json.dumps({"passages": list(texts)})


def test_list_mode_asks_once_per_prompt_and_keeps_the_first_n_of_the_list():
    b, llm = backend("list", 2, lambda user, attempt, k: passages(f"{user} a", f"{user} b", f"{user} c"))
    seen = []
    out = b.complete([prompt("p0"), prompt("p1")], on_result=lambda i, c: seen.append((i, c.passages)))
    assert [c.passages for c in out] == [["p0 a", "p0 b"], ["p1 a", "p1 b"]]
    assert sorted(seen) == [(0, ["p0 a", "p0 b"]), (1, ["p1 a", "p1 b"])]
    assert b.passages_per_prompt == 2
    assert (b.usage.requests, b.usage.prompt_tokens, b.usage.failures) == (2, 14, 0)
    assert b.usage.completion_tokens == sum(len(passages(f"p{i} a", f"p{i} b", f"p{i} c")) for i in range(2))


def test_n_mode_takes_the_first_passage_of_each_sample_and_counts_the_samples_that_did_not_parse():
    def write(user, attempt, k):
        return "not json" if k == 1 else passages(f"{user} s{k}", "an extra passage the mode ignores")

    b, llm = backend("n", 3, write)
    (c,) = b.complete([prompt("q")])
    assert c.passages == ["q s0", "q s2"] and c.error is None
    assert b.passages_per_prompt == 1
    assert b.usage.requests == 1 and b.usage.failures == 0
    assert b.usage.errors == {"ParseError (some of n samples)": 1}


def test_a_prompt_that_never_parses_is_a_cacheable_parse_failure_after_the_retries():
    b, llm = backend("n", 2, lambda user, attempt, k: "{" if user == "bad" else passages(f"{user} ok"), max_retries=2)
    good, bad = b.complete([prompt("good"), prompt("bad")])
    assert good.passages == ["good ok", "good ok"]
    assert bad.passages is None and bad.error.startswith("ParseError") and bad.cacheable
    assert llm.attempts == {"good": 1, "bad": 3}  # the first try and two retries, each with a new attempt
    assert (b.usage.requests, b.usage.retries, b.usage.failures) == (4, 2, 1)


def test_ask_returns_the_first_parsed_sample_per_prompt():
    b, _ = backend("n", 4, lambda user, attempt, k: json.dumps({"answers": user == "yes"}))
    got = []
    answers = b.ask([prompt("yes"), prompt("no")], lambda text: json.loads(text)["answers"], None, 16,
                    on_result=lambda i, value, error: got.append((i, value, error)))
    assert answers == [(True, None), (False, None)]
    assert sorted(got) == [(0, True, None), (1, False, None)]
