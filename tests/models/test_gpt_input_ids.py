"""GPT refuses token ids that are not ids of its vocabulary (ember issue 11, case 9).

Before, ``generate`` ran from a prompt id of -1 (NumPy indexing: the last embedding row) and
``forward_cached`` read any id the same way. The prompt is now checked when ``generate`` is called;
``forward`` and ``forward_cached`` go through ``F.embedding``, which checks type and range.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import ember
from ember.models.gpt import GPT, GPTConfig

VOCAB = 13


def small_gpt(**overrides) -> GPT:
    return GPT(GPTConfig(**{"vocab_size": VOCAB, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8,
                            **overrides})).to(dtype="float64")


@pytest.fixture(scope="module")
def model():
    ember.manual_seed(0)
    return small_gpt()


# -- generate ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt,bad,at", [
    ([-1], -1, 0),
    ([3, 4, -1], -1, 2),
    ([VOCAB], VOCAB, 0),
    ([1, VOCAB + 100], VOCAB + 100, 1),
    (np.array([2, -5]), -5, 1),
    (np.array([[1, 2, VOCAB]]), VOCAB, 2),  # a (1, T) prompt: its T ids
    (ember.tensor([0, -1]), -1, 1),
], ids=["negative", "negative-later", "vocab-size", "far-beyond", "array", "batch-of-one", "tensor"])
def test_generate_refuses_an_out_of_range_prompt_id_when_called(model, prompt, bad, at):
    with pytest.raises(ValueError, match=re.escape(f"generate (prompt): token id {bad} at position {at} is out of "
                                                   f"range [0, {VOCAB})")):
        model.generate(prompt, 3)  # not iterated: the check runs at the call


@pytest.mark.parametrize("prompt,shown,kind,at", [
    ([1.0], "1.0", "float", 0),
    ([1, 2.5], "2.5", "float", 1),
    ([True, 1], "True", "bool", 0),
    (np.array([1.0, 2.0]), "1.0", "float", 0),
    (np.array([True]), "True", "bool", 0),
    (ember.tensor([1.0, 2.0]), "1.0", "float", 0),
], ids=["float", "float-later", "bool", "float-array", "bool-array", "float-tensor"])
def test_generate_refuses_a_prompt_id_that_is_not_an_integer(model, prompt, shown, kind, at):
    with pytest.raises(TypeError, match=re.escape(f"token id {shown} at position {at} is a {kind}, not an integer; "
                                                  f"token ids are integers in [0, {VOCAB})")):
        model.generate(prompt, 3)


def test_the_sampling_arguments_are_checked_at_the_call_too(model):
    with pytest.raises(ValueError, match="temperature"):
        model.generate([1], 3, temperature=-1.0)
    with pytest.raises(ValueError, match="at least one token"):
        model.generate([], 3)


@pytest.mark.parametrize("container", [list, tuple, np.array, lambda ids: np.array([ids], dtype=np.int32),
                                       lambda ids: ember.tensor(np.array(ids)), lambda ids: [np.int64(i) for i in ids]],
                         ids=["list", "tuple", "array", "int32-batch-of-one", "tensor", "numpy-ints"])
def test_every_integer_prompt_gives_the_same_tokens(model, container):
    prompt = [1, 2, VOCAB - 1, 0]
    expected = list(model.generate(prompt, 6, temperature=0))
    assert list(model.generate(container(prompt), 6, temperature=0)) == expected


def test_generate_leaves_the_callers_prompt_alone(model):
    prompt = [1, 2, 3]
    out = list(model.generate(prompt, 4, temperature=0))
    assert prompt == [1, 2, 3] and len(out) == 4


@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_records_no_graph_and_keeps_the_callers_grad_mode(use_cache):
    """The model runs without recording a graph, but only inside each step: between tokens the caller's code
    runs in its own grad mode (a no_grad around the whole generator would leak into it)."""
    seen = []

    class Watched(GPT):
        def _hidden(self, ids):  # the blocks, which every uncached step runs
            seen.append(ember.is_grad_enabled())
            return super()._hidden(ids)

    model = Watched(GPTConfig(vocab_size=VOCAB, block_size=4, n_layer=1, n_head=2, n_embd=8))
    between = []
    for _ in model.generate([1, 2], 6, temperature=0, use_cache=use_cache):  # slides past block_size 4
        between.append(ember.is_grad_enabled())
    assert between == [True] * 6
    assert seen and not any(seen)


# -- forward and forward_cached ------------------------------------------------------------------------
@pytest.mark.parametrize("ids,error,match", [
    (np.array([[0, -1]]), IndexError, re.escape(f"embedding: index out of range [0, {VOCAB}) (min -1, max 0)")),
    (np.array([[0, VOCAB]]), IndexError, re.escape(f"embedding: index out of range [0, {VOCAB}) (min 0, max {VOCAB})")),
    (np.array([[0.0, 1.0]]), TypeError, "embedding: indices must be integers, got float64"),
    (np.array([[True, False]]), TypeError, "embedding: indices must be integers, got bool"),
], ids=["negative", "vocab-size", "float", "bool"])
def test_forward_and_forward_cached_check_ids_through_the_embedding(model, ids, error, match):
    with pytest.raises(error, match=match):
        model(ids)
    with pytest.raises(error, match=match):
        model(ember.tensor(ids))
    cache = model.new_cache()
    with pytest.raises(error, match=match):
        model.forward_cached(ids, cache)
    assert cache.pos == 0  # nothing was written


def test_forward_cached_still_equals_the_full_forward(model):
    ids = np.array([[3, 1, VOCAB - 1, 0, 7]])
    full = model(ids).numpy()
    cached = model.forward_cached(ids, model.new_cache())
    np.testing.assert_allclose(cached, full, rtol=0, atol=1e-12)
