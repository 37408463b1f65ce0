"""The serving scheduler without HTTP: continuous batching gives every request what it would get alone.

References are independent of the engine: ``GPT.generate`` (one sequence, its own cache) for greedy and seeded
decoding, the full forward (no cache) for log-probabilities, and a scripted model whose output is known token
by token for stop strings, end-of-text and UTF-8 pieces split across byte tokens.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ember.models.gpt import GPT, GPTConfig, KVCache, sample_next
from ember.serve import chat
from ember.serve.engine import Delta, Done, Engine, QueueFull, RequestRejected, SamplingParams, collect
from ember.text import ByteBPETokenizer


def drain(request) -> list:
    return request.drain()


def run(engine: Engine) -> None:
    while engine.step():
        pass


def result(request) -> dict:
    return collect(drain(request), request.params.n)


def greedy_params(max_tokens: int, **kw) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, **kw)


class ForwardSpy:
    """Records every forward the engine runs: (step, tokens of each sequence, rows)."""

    def __init__(self, model: GPT):
        self.calls, self.step, self.forward = [], 0, model.forward_last

    def __call__(self, sequences, cache, rows):
        self.calls.append((self.step, [len(s) for s in sequences], list(rows)))
        return self.forward(sequences, cache, rows)

    def chunks(self) -> list[tuple[int, int]]:
        """(tokens, row) of every sequence longer than one token (a prompt's chunk)."""
        return [(n, row) for _, lengths, rows in self.calls for n, row in zip(lengths, rows) if n > 1]


@pytest.fixture
def spy(model, monkeypatch):
    s = ForwardSpy(model)
    monkeypatch.setattr(model, "forward_last", s)
    return s


def stepped(engine: Engine, spy: ForwardSpy, requests=()) -> bool:
    """One engine step; checks that it ran at most one forward, which decoded every request already decoding."""
    decoding = {r.choices[0].row for r in requests if r.choices and r.prefilled == len(r.prompt) and not r.done}
    spy.step += 1
    worked = engine.step()
    calls = [(lengths, rows) for step, lengths, rows in spy.calls if step == spy.step]
    assert len(calls) <= 1, calls
    if decoding:
        lengths, rows = calls[0]
        assert {row for n, row in zip(lengths, rows) if n == 1} >= decoding, (decoding, calls)
    return worked


def test_batched_greedy_decoding_equals_each_request_alone_whatever_joins_or_leaves(greedy, model, tok, spy):
    engine = Engine(model, tok, max_batch=3, prefill_chunk=5)
    prompts = ["the quick", "a", "lazy dog jumps over the brown", "fox", "over", "dog <|user|>\n"]
    max_tokens = [30, 6, 25, 12, 40, 9]
    requests = {}
    for i in (0, 1):
        requests[i] = engine.submit(tok.encode(prompts[i]), greedy_params(max_tokens[i]))
    for _ in range(3):
        stepped(engine, spy, requests.values())
    for i in (2, 3, 4):  # one more than the free rows: request 4 waits until a row is freed
        requests[i] = engine.submit(tok.encode(prompts[i]), greedy_params(max_tokens[i]))
    stepped(engine, spy, requests.values())
    assert engine.queue_length >= 1
    requests[5] = engine.submit(tok.encode(prompts[5]), greedy_params(max_tokens[5]))
    while stepped(engine, spy, requests.values()):
        pass
    for i, request in requests.items():
        got = result(request)
        want = greedy(prompts[i], max_tokens[i])
        assert got["choices"][0]["text"] == want, i
        assert got["choices"][0]["finish_reason"] == "length"
        assert got["completion_tokens"] == len(want) and got["prompt_tokens"] == len(prompts[i])
    assert max(len(rows) for _, _, rows in spy.calls) == 3  # all rows in one forward
    assert all(sum(n > 1 for n in lengths) <= 1 for _, lengths, _ in spy.calls)  # one prompt's chunk at most
    assert engine.active_rows == 0 and engine.free_rows == [0, 1, 2]


def test_a_long_prompt_is_prefilled_in_chunks_while_the_others_keep_decoding(greedy, model, tok, spy):
    engine = Engine(model, tok, max_batch=2, prefill_chunk=4)
    short = engine.submit(tok.encode("fox"), greedy_params(30))
    stepped(engine, spy)
    stepped(engine, spy)
    drain(short)
    long_prompt = "the quick brown fox jumps over the"  # 34 tokens: 9 chunks of at most 4
    long = engine.submit(tok.encode(long_prompt), greedy_params(4))
    tokens_per_step, prefilled = [], []
    for _ in range(5):
        stepped(engine, spy)
        tokens_per_step.append(sum(len(e.text) for e in drain(short) if isinstance(e, Delta)))
        prefilled.append(long.prefilled)
    assert tokens_per_step == [1, 1, 1, 1, 1]  # the short request gets its token every step
    assert prefilled == [4, 8, 12, 16, 20]
    row = long.choices[0].row
    run(engine)
    assert result(long)["choices"][0]["text"] == greedy(long_prompt, 4)
    assert [n for n, r in spy.chunks() if r == row] == [4] * 8 + [2]


def test_cancelling_frees_the_rows_at_the_next_step(greedy, model, tok):
    engine = Engine(model, tok, max_batch=3, max_queue=4)
    running = engine.submit(tok.encode("the"), greedy_params(30, n=2))
    engine.step()
    engine.step()
    waiting = engine.submit(tok.encode("dog"), greedy_params(5, n=3))  # needs all three rows: waits
    assert engine.active_rows == 2 and engine.queue_length == 1
    running.cancel()
    engine.step()  # frees both rows and admits the waiting request into them
    events = drain(running)
    assert isinstance(events[-1], Done) and events[-1].cancelled and running.done
    assert engine.queue_length == 0 and engine.active_rows == 3
    run(engine)
    assert [c["text"] for c in result(waiting)["choices"]] == [greedy("dog", 5)] * 3
    assert engine.active_rows == 0 and engine.cache.lengths.tolist() == [0, 0, 0]
    queued = engine.submit(tok.encode("dog"), greedy_params(5))
    queued.cancel()
    assert not engine.step() and engine.queue_length == 0
    assert drain(queued)[-1].cancelled


def test_stop_strings_cut_the_text_exactly_before_the_earliest_one(greedy, model, tok):
    full = greedy("the lazy", 30)
    stops = (full[14:17], "never there", full[6:8])
    end = min(full.find(s) + len(s) for s in stops if s in full)  # generation stops once a stop string is whole
    cut = min(full[:end].find(s) for s in stops if s in full[:end])  # and the text ends where it starts
    assert 0 < cut < 14
    engine = Engine(model, tok)
    request = engine.submit(tok.encode("the lazy"), greedy_params(30, stop=stops))
    run(engine)
    events = drain(request)
    got = collect(events, 1)
    assert got["choices"][0] == {"text": full[:cut], "finish_reason": "stop", "tokens": []}
    assert got["completion_tokens"] == end  # one char per token
    assert [e.finish_reason for e in events if isinstance(e, Delta)][-1] == "stop"


def test_text_that_could_start_a_stop_string_is_held_back_until_it_cannot(greedy, model, tok):
    full = greedy("over", 30)
    stop = full[10:13] + "#"  # its first three characters occur, the whole never does
    engine = Engine(model, tok)
    request = engine.submit(tok.encode("over"), greedy_params(30, stop=(stop,)))
    sent, held = "", []
    while engine.step():
        sent += "".join(e.text for e in drain(request) if isinstance(e, Delta))
        if not request.done:
            made = full[: request.completion_tokens]
            hold = max(k for k in range(len(stop)) if made.endswith(stop[:k]))
            assert sent == made[: len(made) - hold]
            held.append(hold)
    assert sent == full and max(held) == 3


class ScriptedModel:
    """Stands in for a GPT: every sequence's completion is ``script`` (greedy), whatever the prompt; prompts
    are ``prompt_len`` tokens long."""

    def __init__(self, script: list[int], prompt_len: int, vocab_size: int, context: int = 64):
        self.script, self.prompt_len = script, prompt_len
        self.config = GPTConfig(vocab_size=vocab_size, block_size=context, n_layer=1, n_head=1, n_embd=4)

    def eval(self):
        return self

    def new_cache(self, batch: int):
        return KVCache(self.config, batch, self.config.block_size, np.float64)

    def forward_last(self, sequences, cache, rows):
        logits = np.zeros((len(rows), self.config.vocab_size))
        for i, (sequence, row) in enumerate(zip(sequences, rows)):
            cache.lengths[row] += len(sequence)
            k = cache.lengths[row] - self.prompt_len
            if 0 <= k < len(self.script):
                logits[i, self.script[k]] = 10.0
        return logits


@pytest.fixture(scope="module")
def byte_tok():
    return ByteBPETokenizer([], special_tokens=["<|endoftext|>"])


def test_utf8_characters_split_across_byte_tokens_reach_the_consumer_whole(byte_tok):
    text = "aé€😀b"
    eos = byte_tok.special_tokens["<|endoftext|>"]
    script = list(text.encode("utf-8")) + [eos, ord("z")]
    engine = Engine(ScriptedModel(script, 1, byte_tok.vocab_size), byte_tok)
    assert engine.eos_token_id == eos  # the tokenizer's <|endoftext|>
    request = engine.submit([ord("x")], greedy_params(40))
    pieces = []
    while engine.step():
        pieces += [e.text for e in drain(request) if isinstance(e, Delta) and e.text]
    assert pieces == ["a", "é", "€", "😀", "b"]
    assert request.completion_tokens == len(text.encode("utf-8")) + 1  # the end-of-text token counts, unshown
    assert request.choices[0].finish_reason == "stop"


def test_a_stop_string_inside_multibyte_text_and_an_explicit_end_token(byte_tok):
    script = list("ab€cd".encode())
    engine = Engine(ScriptedModel(script, 2, byte_tok.vocab_size), byte_tok, eos_token_id=ord("d"))
    stopped = engine.submit([1, 2], greedy_params(40, stop=("€c",)))
    ended = engine.submit([1, 2], greedy_params(40))
    run(engine)
    assert result(stopped)["choices"][0]["text"] == "ab"
    assert result(ended)["choices"][0] == {"text": "ab€c", "finish_reason": "stop", "tokens": []}


def test_the_context_limit_ends_a_generation_with_length(greedy, model, tok):
    prompt = "the quick brown fox jumps over the lazy dog, the quick b"  # 56 tokens: 8 positions left of 64
    engine = Engine(model, tok)
    request = engine.submit(tok.encode(prompt), greedy_params(30))
    run(engine)
    got = result(request)
    assert got["choices"][0]["finish_reason"] == "length"
    assert got["choices"][0]["text"] == greedy(prompt, 30) and got["completion_tokens"] == 8


def reference_sample(model: GPT, prompt: list[int], n_tokens: int, rng, **sampling) -> list[int]:
    """Sampling with the full forward (no cache) and the given generator."""
    ids = list(prompt)
    for _ in range(n_tokens):
        logits = model(np.array([ids])).numpy()[0, -1].astype(np.float64)
        ids.append(sample_next(logits, sampling["temperature"], sampling["top_k"], sampling["top_p"], rng))
    return ids[len(prompt):]


def test_seeds_reproduce_and_each_choice_has_its_documented_stream(model, tok):
    prompt = tok.encode("the fox")
    sampling = dict(temperature=0.9, top_k=8, top_p=0.95)
    params = SamplingParams(max_tokens=20, seed=3, n=3, **sampling)
    engine = Engine(model, tok, max_batch=4)
    first, again = engine.submit(prompt, params), engine.submit(prompt, params)
    other = engine.submit(prompt, SamplingParams(max_tokens=20, seed=4, **sampling))
    run(engine)
    texts = [c["text"] for c in result(first)["choices"]]
    assert texts == [c["text"] for c in result(again)["choices"]]
    assert texts[0] == tok.decode(list(model.generate(prompt, 20, seed=3, **sampling)))  # choice 0: default_rng(seed)
    for i in (1, 2):
        rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(i,)))
        assert texts[i] == tok.decode(reference_sample(model, prompt, 20, rng, **sampling))
    assert len(set(texts)) == 3 and result(other)["choices"][0]["text"] not in texts


def test_n_choices_share_one_prefill(greedy, model, tok, spy):
    engine = Engine(model, tok, max_batch=4, prefill_chunk=8)
    prompt = "jumps over the lazy"
    request = engine.submit(tok.encode(prompt), greedy_params(12, n=4))
    run(engine)
    assert [c["text"] for c in result(request)["choices"]] == [greedy(prompt, 12)] * 4
    prefill = spy.chunks()
    assert [n for n, _ in prefill] == [8, 8, 3] and len({row for _, row in prefill}) == 1


def test_logprobs_are_the_models_own_distribution(model, tok):
    prompt = tok.encode("lazy")
    engine = Engine(model, tok)
    request = engine.submit(prompt, SamplingParams(max_tokens=6, temperature=0.7, seed=1, logprobs=3))
    run(engine)
    tokens = result(request)["choices"][0]["tokens"]
    ids = prompt + [t.id for t in tokens]
    logits = model(np.array([ids])).numpy()[0].astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - \
        logits.max(-1, keepdims=True)
    for k, t in enumerate(tokens):
        row = logp[len(prompt) - 1 + k]
        assert t.logprob == pytest.approx(row[t.id], abs=1e-9)
        assert [i for i, _ in t.top] == np.argsort(-row)[:3].tolist()
        assert [lp for _, lp in t.top] == pytest.approx(np.sort(row)[::-1][:3], abs=1e-9)


def test_requests_that_cannot_run_are_refused_and_the_queue_is_bounded(model, tok):
    engine = Engine(model, tok, max_batch=2, max_queue=2)
    with pytest.raises(RequestRejected, match="64 tokens, which leaves no room"):
        engine.submit(list(range(4)) * 16, greedy_params(4))
    with pytest.raises(RequestRejected, match="n=3 choices need 3 rows"):
        engine.submit([1], greedy_params(4, n=3))
    with pytest.raises(RequestRejected, match="top_p must be in"):
        engine.submit([1], SamplingParams(top_p=0.0))
    engine.submit([1], greedy_params(4))
    engine.submit([1], greedy_params(4))
    with pytest.raises(QueueFull, match="2 requests are already waiting"):
        engine.submit([1], greedy_params(4))


def test_the_engine_thread_serves_concurrent_callers(greedy, model, tok):
    engine = Engine(model, tok, max_batch=2).start()
    prompts = ["the", "quick brown", "fox", "lazy dog", "over"]
    results = {}

    def call(i):
        results[i] = engine.generate(tok.encode(prompts[i]), greedy_params(10), timeout=30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.stop()
    for i, p in enumerate(prompts):
        assert results[i]["choices"][0]["text"] == greedy(p, 10)
    with pytest.raises(QueueFull, match="shutting down"):
        engine.submit([1], greedy_params(4))


def test_on_a_second_device_the_engine_serves_what_the_cpu_serves(greedy, model, tok):
    """On the test double of a GPU (arrays that refuse to mix with host arrays): the prompt copied between rows
    and the logits brought back to the host for sampling stay on the right side."""
    from ember.testing import device_double

    other = GPT(model.config).to(dtype="float64").eval()
    other.load_state_dict(model.state_dict())
    other.to(device=device_double.DEVICE)
    engine = Engine(other, tok, max_batch=3, prefill_chunk=4)
    requests = [engine.submit(tok.encode("lazy dog"), greedy_params(10, n=2, logprobs=1)),
                engine.submit(tok.encode("fox"), greedy_params(10))]
    run(engine)
    assert [c["text"] for c in result(requests[0])["choices"]] == [greedy("lazy dog", 10)] * 2
    assert result(requests[1])["choices"][0]["text"] == greedy("fox", 10)



class FailsOnce:
    """The model, except that its first forward raises (a bug in a step)."""

    def __init__(self, model):
        self.model, self.failed = model, False

    def __getattr__(self, name):
        return getattr(self.model, name)

    def eval(self):
        return self

    def forward_last(self, sequences, cache, rows):
        if not self.failed:
            self.failed = True
            raise FloatingPointError("boom")
        return self.model.forward_last(sequences, cache, rows)


def test_a_failing_step_ends_its_requests_with_the_error_and_the_engine_serves_on(greedy, model, tok):
    engine = Engine(FailsOnce(model), tok, max_batch=2).start()
    try:
        failed = engine.generate(tok.encode("dog"), greedy_params(5), timeout=30)
        assert failed["error"] == "internal error in the serving engine: FloatingPointError: boom"
        assert engine.active_rows == 0
        served = engine.generate(tok.encode("dog"), greedy_params(5), timeout=30)
        assert served["error"] is None and served["choices"][0]["text"] == greedy("dog", 5)
    finally:
        engine.stop()


def test_chat_messages_are_text_but_a_completion_prompt_may_name_end_of_text(byte_tok):
    """As OpenAI's APIs: ``<|endoftext|>`` in a completion prompt is the document separator; in a chat message it
    is seven characters, which cannot cut the conversation short."""
    from ember.serve import protocol

    served = protocol.ServedModel(id="m", context=512, vocab_size=byte_tok.vocab_size, max_batch=4)
    eos = byte_tok.special_tokens["<|endoftext|>"]
    text = "one<|endoftext|>two"
    completion = protocol.parse_completion({"model": "m", "prompt": text}, served)
    assert eos in protocol.encode_prompt(byte_tok, completion, served)
    chat_request = protocol.parse_chat({"model": "m", "messages": [{"role": "user", "content": text}]}, served)
    ids = protocol.encode_prompt(byte_tok, chat_request, served)
    assert eos not in ids and byte_tok.decode(ids) == chat.render([("user", text)])
