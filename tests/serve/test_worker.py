"""The engine in a process of its own (``serve.worker.EngineProcess``, ``ember serve``'s default): it serves what
the engine serves in a thread, refuses and cancels as it does, and a child that fails or dies is reported, never
waited on for ever.

Each process loads the tiny model from a run folder written here (the child is spawned: it shares nothing)."""

from __future__ import annotations

import functools
import os
import signal
import time

import pytest

from ember.io import save_checkpoint
from ember.serve.engine import Done, Engine, EngineDown, QueueFull, RequestRejected, SamplingParams
from ember.serve.worker import EngineProcess, engine_from_run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, model, tok):
    folder = tmp_path_factory.mktemp("served") / "tiny-run"
    folder.mkdir()
    save_checkpoint(folder / "model.safetensors", model)
    tok.save(folder / "tokenizer.json")
    return folder


def spawn(folder, **options) -> EngineProcess:
    return EngineProcess(functools.partial(engine_from_run, folder, **options)).start()


@pytest.fixture(scope="module")
def remote(run_folder):
    engine = spawn(run_folder, max_batch=3, max_queue=4)
    yield engine
    engine.stop()


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_requests_in_the_process_get_what_the_engine_in_a_thread_gives(remote, model, tok, greedy):
    assert (remote.context, remote.max_batch, remote.tokenizer.vocab_size) == (64, 3, tok.vocab_size)
    prompts = ["the quick", "a", "lazy dog jumps over the brown", "fox", "over"]
    handles = [remote.submit(tok.encode(p), SamplingParams(max_tokens=20, temperature=0.0)) for p in prompts]
    for prompt, handle in zip(prompts, handles):
        events = list(handle.stream(timeout=30))
        assert "".join(e.text for e in events[:-1]) == greedy(prompt, 20)
        assert events[-1] == Done(len(prompt), 20)
    sampled = SamplingParams(max_tokens=15, temperature=0.9, top_k=5, seed=11, n=2, logprobs=2)
    local = Engine(model, tok, max_batch=3).start()
    try:
        want = local.generate(tok.encode("the"), sampled, timeout=30)
    finally:
        local.stop()
    assert remote.generate(tok.encode("the"), sampled, timeout=30) == want
    with remote.lock:
        assert remote.stats.completion_tokens >= 5 * 20 + 30 and remote.stats.prompt_tokens > 0
    assert remote.queue_length == 0 and remote.active_rows == 0


def test_what_can_never_run_is_refused_before_it_is_sent(remote, tok):
    with pytest.raises(RequestRejected, match="no room for a completion"):
        remote.submit([1] * 64, SamplingParams())
    with pytest.raises(RequestRejected, match="n=4 choices need 4 rows"):
        remote.submit([1], SamplingParams(n=4))


def test_cancelling_ends_the_request_and_frees_its_rows(remote, tok):
    handle = remote.submit(tok.encode("a"), SamplingParams(max_tokens=60, temperature=1.0, seed=1, n=3))
    first = handle.events.get(timeout=30)
    assert first.text is not None
    handle.cancel()
    events = list(handle.stream(timeout=30))
    assert events[-1].cancelled and events[-1].completion_tokens < 180
    wait_for(lambda: remote.active_rows == 0, "the rows to be freed")


def test_a_full_queue_is_refused_in_the_parent(run_folder, tok):
    engine = spawn(run_folder, max_batch=1, max_queue=2)
    try:
        long = SamplingParams(max_tokens=60, temperature=1.0, seed=0)
        running = engine.submit(tok.encode("a"), long)
        wait_for(lambda: engine.active_rows == 1, "the first request to take the row")
        waiting = [engine.submit(tok.encode("b"), long) for _ in range(2)]
        with pytest.raises(QueueFull, match="max_queue 2"):
            engine.submit(tok.encode("c"), long)
        for handle in [running] + waiting:
            handle.cancel()
        for handle in [running] + waiting:
            assert list(handle.stream(timeout=30))[-1].cancelled
        assert list(engine.submit(tok.encode("d"), SamplingParams(max_tokens=3)).stream(timeout=30))[-1].error is None
    finally:
        engine.stop()


def test_a_load_that_fails_in_the_child_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="missing-run"):
        spawn(tmp_path / "missing-run")
    with pytest.raises(RuntimeError, match="exited while loading"):
        EngineProcess(functools.partial(os._exit, 3)).start()


def test_a_child_that_dies_ends_the_requests_in_flight_and_refuses_new_ones(run_folder, tok):
    engine = spawn(run_folder, max_batch=2)
    try:
        handle = engine.submit(tok.encode("a"), SamplingParams(max_tokens=60, temperature=1.0, seed=0))
        handle.events.get(timeout=30)
        os.kill(engine.pid, signal.SIGKILL)
        last = list(handle.stream(timeout=30))[-1]
        assert isinstance(last, Done) and "exited (exit code -9)" in last.error
        assert "exit code -9" in engine.failure
        with pytest.raises(EngineDown, match="exit code -9"):
            engine.submit(tok.encode("a"), SamplingParams())
    finally:
        engine.stop()
