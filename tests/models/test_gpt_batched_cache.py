"""The KV cache's independent rows: sequences at different lengths decoded in one forward (a server's continuous
batching) give, row by row, the logits of each sequence's own full forward."""

from __future__ import annotations

import numpy as np
import pytest

from ember.models.gpt import GPT, GPTConfig
from ember.testing.perturb import perturb_hyper_connections

SMALL = dict(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=8)
MODES = [("plain", 0), ("mhc", 4), ("mhc2", 2), ("hc", 3)]


def small_gpt(residual="plain", streams=0, dtype="float64") -> GPT:
    model = GPT(GPTConfig(**SMALL, residual=residual, streams=streams)).to(dtype=dtype).eval()
    rng = np.random.default_rng(7)
    for p in model.parameters():  # away from the initialisation, so that every term matters
        p.data += rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    if residual != "plain":
        perturb_hyper_connections(model, seed=3)
    return model


def sequence(length: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, SMALL["vocab_size"], size=length)


def full_logits(model: GPT, seq) -> np.ndarray:
    return model(np.asarray(seq)[None]).numpy()[0]


@pytest.mark.parametrize("residual,streams", MODES)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_rows_at_different_lengths_decode_together_as_each_alone(residual, streams, dtype, tol):
    model = small_gpt(residual, streams, dtype)
    seqs = [sequence(16, seed) for seed in range(3)]
    cache = model.new_cache(batch=4)  # one row more than used: an idle row must not matter
    got = [[model.forward_cached(s[None, :p], cache, rows=[r])[0]] for r, (s, p) in enumerate(zip(seqs, (1, 4, 9)))]
    lengths = [1, 4, 9]
    while min(lengths) < 16:  # one token for every unfinished row, in one forward
        rows = [r for r in range(3) if lengths[r] < 16]
        ids = np.array([[seqs[r][lengths[r]]] for r in rows])
        out = model.forward_cached(ids, cache, rows=rows)
        for i, r in enumerate(rows):
            got[r].append(out[i])
            lengths[r] += 1
    assert cache.lengths.tolist() == [16, 16, 16, 0]
    for r, s in enumerate(seqs):
        want = full_logits(model, s)
        np.testing.assert_allclose(np.concatenate(got[r]), want, rtol=0, atol=tol * np.abs(want).max())


def test_a_chunk_of_prefill_beside_decoding_rows_and_rows_in_any_order():
    model = small_gpt("mhc", 4)
    a, b = sequence(14, 1), sequence(14, 2)
    cache = model.new_cache(batch=2)
    model.forward_cached(a[None, :6], cache, rows=[1])
    model.forward_cached(b[None, :2], cache, rows=[0])
    chunk = model.forward_cached(b[None, 2:9], cache, rows=[0])  # a 7-token chunk while row 1 waits at 6
    both = model.forward_cached(np.array([[a[6]], [b[9]]]), cache, rows=[1, 0])  # rows listed out of order
    np.testing.assert_allclose(chunk[0], full_logits(model, b)[2:9], rtol=0, atol=1e-12)
    np.testing.assert_allclose(both[0, 0], full_logits(model, a)[6], rtol=0, atol=1e-12)
    np.testing.assert_allclose(both[1, 0], full_logits(model, b)[9], rtol=0, atol=1e-12)


def test_a_reset_row_starts_a_new_sequence_and_never_sees_the_old_keys():
    model = small_gpt()
    old, new, other = sequence(12, 4), sequence(10, 5), sequence(8, 6)
    cache = model.new_cache(batch=2)
    model.forward_cached(np.stack([old[:8], other]), cache)
    model.forward_cached(old[None, 8:12], cache, rows=[0])
    cache.reset([0])
    assert cache.lengths.tolist() == [0, 8]
    got = np.concatenate([model.forward_cached(new[None, :3], cache, rows=[0])[0]]
                         + [model.forward_cached(new[None, i:i + 1], cache, rows=[0])[0] for i in range(3, 10)])
    np.testing.assert_allclose(got, full_logits(model, new), rtol=0, atol=1e-12)
    # the other row kept its keys: it continues as if alone
    nxt = model.forward_cached(np.array([[3]]), cache, rows=[1])[0, 0]
    np.testing.assert_allclose(nxt, full_logits(model, np.append(other, 3))[-1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_what_an_earlier_request_left_in_a_reset_row_never_reaches_a_later_one(poison):
    """A request whose keys and values went non-finite, then a new request on its row decoded beside a longer row:
    the masked stale positions get zero weight, and zero times NaN is NaN, so reset must clear them."""
    model = small_gpt()
    new, other = sequence(6, 8), sequence(10, 9)
    cache = model.new_cache(batch=2)
    model.forward_cached(sequence(9, 7)[None], cache, rows=[0])
    cache.kv[:, :, 0, :, :9] = poison  # what a diverged request would have written
    cache.reset([0])
    model.forward_cached(other[None, :8], cache, rows=[1])
    model.forward_cached(new[None, :2], cache, rows=[0])
    # both rows take two tokens in one forward: row 0 (at 2) attends over the span up to row 1's end (10)
    out = model.forward_cached(np.stack([new[2:4], other[8:10]]), cache, rows=[0, 1])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], full_logits(model, new)[2:4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[1], full_logits(model, other)[8:10], rtol=0, atol=1e-12)


def test_pos_is_the_common_length_and_refuses_rows_that_differ():
    model = small_gpt()
    cache = model.new_cache(batch=2)
    model.forward_cached(np.array([[1, 2], [3, 4]]), cache)
    assert cache.pos == 2
    model.forward_cached(np.array([[5]]), cache, rows=[1])
    with pytest.raises(ValueError, match=r"different lengths \[2, 3\]"):
        _ = cache.pos
    cache.pos = 0
    assert cache.lengths.tolist() == [0, 0]


@pytest.mark.parametrize("rows,ids,match", [
    ([2], [[1]], "row 2 is out of range for a cache of 2 rows"),
    ([-1], [[1]], "row -1 is out of range"),
    ([0, 0], [[1], [1]], "repeat a row"),
    ([0, 1], [[1]], "1 sequences of ids for 2 cache rows"),
    ([], [[1]], "non-empty"),
    ([0.5], [[1]], "row indices"),
])
def test_bad_rows_are_refused_and_nothing_is_written(rows, ids, match):
    model = small_gpt()
    cache = model.new_cache(batch=2)
    before = cache.kv.copy()
    with pytest.raises(ValueError, match=match):
        model.forward_cached(np.array(ids), cache, rows=rows)
    assert cache.lengths.tolist() == [0, 0]
    np.testing.assert_array_equal(cache.kv, before)


def test_a_row_that_would_overflow_is_refused_before_any_row_moves():
    model = small_gpt()
    cache = model.new_cache(batch=2, max_len=8)
    model.forward_cached(sequence(7, 1)[None], cache, rows=[0])
    with pytest.raises(ValueError, match="KVCache full: 7 \\+ 2 tokens exceed its 8 positions"):
        model.forward_cached(np.array([[1, 2], [3, 4]]), cache)
    assert cache.lengths.tolist() == [7, 0]


def test_ids_must_be_two_dimensional():
    model = small_gpt()
    with pytest.raises(ValueError, match=r"ids must be \(batch, tokens\), got shape \(3,\)"):
        model.forward_cached(np.array([1, 2, 3]), model.new_cache())


@pytest.mark.parametrize("residual,streams", [("plain", 0), ("mhc", 4)])
def test_rows_at_different_lengths_on_a_second_device_equal_the_cpu(residual, streams):
    """On the test double of a GPU (arrays that refuse to mix with host arrays), the per-row path moves its
    index arrays and mask to the device and gives the CPU's logits."""
    from ember import backend
    from ember.testing import device_double

    cpu = small_gpt(residual, streams)
    other = small_gpt(residual, streams)
    other.load_state_dict(cpu.state_dict())
    other.to(device=device_double.DEVICE)
    a, b = sequence(9, 1), sequence(9, 2)
    results = []
    for model in (cpu, other):
        cache = model.new_cache(batch=3)
        model.forward_cached(a[None, :5], cache, rows=[2])
        model.forward_cached(b[None, :2], cache, rows=[0])
        out = model.forward_cached(np.array([[a[5]], [b[2]]]), cache, rows=[2, 0])
        results.append(backend.device_of(out).to_host(out) if backend.device_of(out).to_host else out)
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-12)


def test_copied_rows_continue_the_source_prompt_and_last_only_is_the_last_row_of_the_logits():
    model = small_gpt("mhc", 4)
    prompt, tails = sequence(6, 1), [sequence(3, s) for s in (2, 3, 4)]
    cache = model.new_cache(batch=4)
    model.forward_cached(sequence(2, 9)[None], cache, rows=[3])  # a row that must not be touched
    last = model.forward_cached(prompt[None], cache, rows=[1], last_only=True)
    assert last.shape == (1, 1, SMALL["vocab_size"])
    np.testing.assert_allclose(last[0, 0], full_logits(model, prompt)[-1], rtol=0, atol=1e-12)
    cache.copy_rows(1, [0, 2])
    assert cache.lengths.tolist() == [6, 6, 6, 2]
    out = model.forward_cached(np.stack(tails), cache, rows=[0, 1, 2])
    for row, tail in enumerate(tails):
        want = full_logits(model, np.concatenate([prompt, tail]))[6:]
        np.testing.assert_allclose(out[row], want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="row 4 is out of range"):
        cache.copy_rows(4, [0])


@pytest.mark.parametrize("residual,streams", MODES)
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_sequences_of_any_lengths_in_one_forward_give_each_ones_own_logits(residual, streams, dtype, tol):
    """forward_last packs a server step (one-token decode rows and a prompt's chunk) into one forward: for random
    mixes of lengths, rows in any order and idle rows, each sequence's last logits are those of its full forward,
    and the cache continues each row as if it had been fed alone."""
    model = small_gpt(residual, streams, dtype)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        seqs = [sequence(16, 100 * seed + r) for r in range(5)]
        cache = model.new_cache(batch=6)
        fed = [0] * 5
        while min(fed) < 16:
            active = [r for r in range(5) if fed[r] < 16 and rng.random() < 0.8] or [fed.index(min(fed))]
            rng.shuffle(active)
            takes = [int(min(16 - fed[r], rng.choice([1, 1, 1, rng.integers(1, 8)]))) for r in active]
            out = model.forward_last([seqs[r][fed[r]:fed[r] + n] for r, n in zip(active, takes)], cache,
                                     rows=active)
            assert out.shape == (len(active), SMALL["vocab_size"])
            for r, n, got in zip(active, takes, out):
                fed[r] += n
                want = full_logits(model, seqs[r][:fed[r]])[-1]
                np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max(), err_msg=f"{seed} {r}")
        assert cache.lengths.tolist() == [16] * 5 + [0]


def test_forward_last_refuses_what_it_cannot_run():
    model = small_gpt()
    cache = model.new_cache(batch=2)
    with pytest.raises(ValueError, match="2 sequences for 1 cache rows"):
        model.forward_last([[1], [2]], cache, rows=[0])
    with pytest.raises(ValueError, match="non-empty"):
        model.forward_last([[]], cache, rows=[0])
    with pytest.raises(ValueError, match="repeat"):
        model.forward_last([[1], [2]], cache, rows=[1, 1])
    with pytest.raises(ValueError, match="KVCache full"):
        model.forward_last([sequence(17, 0)], cache, rows=[0])
    assert cache.lengths.tolist() == [0, 0]
