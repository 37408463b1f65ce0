"""The graph walk: accumulation, non-scalar roots, freeing, grad mode, aliasing, deep graphs."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import ember


def leaf(*shape, dtype=np.float64):
    return ember.tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype), requires_grad=True)


def test_gradients_accumulate_until_zeroed():
    x = leaf(3)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


def test_reused_node_sums_both_paths():
    x = leaf(4)
    y = x * x  # used twice below
    (y + y * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.numpy())


def test_diamond_graph():
    x = leaf(3)
    a, b = x.exp(), x.tanh()
    (a * b).sum().backward()
    xv = x.numpy()
    expected = np.exp(xv) * np.tanh(xv) + np.exp(xv) * (1 - np.tanh(xv) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_non_scalar_backward_needs_gradient():
    x = leaf(2, 3)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*gradient"):
        y.backward()
    y.backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_gradient_shape_is_checked():
    y = leaf(2, 3) * 2.0
    with pytest.raises(ValueError, match="gradient has shape"):
        y.backward(np.ones(3))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.tensor([1.0, 2.0]).sum().backward()


def test_graph_is_freed_after_backward():
    x = leaf(5)
    y = x.exp()
    node = y.grad_fn
    saved = weakref.ref(node.out)  # the array Exp saved for its backward
    y.sum().backward()
    assert node.inputs is None
    gc.collect()
    assert saved() is None or saved() is y.data  # only the output tensor itself may still hold it
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())


def test_no_grad_records_nothing_and_restores_mode():
    x = leaf(3)
    with ember.no_grad():
        y = x * 2.0
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @ember.no_grad()
    def f(t):
        return t * 3.0

    assert f(x).grad_fn is None
    with ember.no_grad(), ember.enable_grad():
        assert (x * 2.0).requires_grad


def test_detach_cuts_the_graph():
    x = leaf(3)
    y = x.detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x.numpy())
    assert x.detach().data is x.data


def test_leaf_gradients_are_never_aliased():
    a, b = leaf(3), leaf(3)
    (a + b).sum().backward()
    a.grad.data *= 10  # e.g. gradient clipping in place
    np.testing.assert_allclose(b.grad.numpy(), np.ones(3))
    c = leaf(2)
    g = np.ones(2)
    (c * 1.0).backward(g)
    c.grad.data += 1
    np.testing.assert_allclose(g, np.ones(2))  # the caller's array is untouched


def test_deep_graph_does_not_recurse():
    x = leaf(2)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(2, 1.0001**5000), rtol=1e-10)


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="floating"):
        ember.tensor([1, 2, 3], requires_grad=True)


def test_setitem_on_a_tensor_that_requires_grad_raises():
    x = leaf(3)
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 1.0
    with ember.no_grad():
        x[0] = 1.0
    assert x.numpy()[0] == 1.0


def test_gradient_does_not_reach_a_tensor_without_requires_grad():
    x, w = ember.tensor([1.0, 2.0], dtype=ember.float64), leaf(2)
    (x * w).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


def test_first_layer_input_gradient_is_skipped():
    """Ops receive needs_input_grad, so a Linear whose input is data computes no input gradient."""
    import ember.nn as nn

    layer = nn.Linear(4, 3)
    x = ember.randn(5, 4)
    out = layer(x)
    assert out.grad_fn.needs_input_grad == (False, True, True)
    out.sum().backward()
    assert x.grad is None and layer.weight.grad is not None


def test_grad_mode_belongs_to_the_thread_that_set_it():
    """A thread inside no_grad (a server decoding) leaves recording on for the others (a training loop), as
    PyTorch's thread-local grad mode does."""
    import threading

    inside, release = threading.Event(), threading.Event()
    seen = {}

    def decode():
        with ember.no_grad():
            seen["decoder"] = ember.is_grad_enabled()
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=decode)
    thread.start()
    try:
        assert inside.wait(5)
        w = ember.tensor([1.0, 2.0], requires_grad=True)
        y = (w * w).sum()
        assert ember.is_grad_enabled() and y.requires_grad
        y.backward()
        np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    finally:
        release.set()
        thread.join()
    assert seen["decoder"] is False
    assert ember.is_grad_enabled()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead", [(5,), (2, 3)])
def test_a_walk_watcher_can_have_linear_write_its_parameter_gradients_into_given_arrays(bias, dtype, lead):
    """``Function.lands``/``node.land``: the weight's (and bias's) gradient is written into the watcher's array,
    kept as ``.grad`` without a copy, and equals the ordinary gradient; the input's gradient is unchanged."""
    from ember import autograd
    from ember.nn import functional as F
    from ember.ops.linalg import Linear

    assert Linear.lands == {1, 2}
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(lead + (4,)), rng.standard_normal((3, 4)), rng.standard_normal(3)]
    cotangent = rng.standard_normal(lead + (3,)).astype(dtype)

    def gradients(land: bool):
        x, w, b = (ember.tensor(a.astype(dtype), requires_grad=True) for a in arrays)
        into = {1: np.full((3, 4), np.nan, dtype), 2: np.full(3, np.nan, dtype)}

        def observe(order):
            for node in order:
                if isinstance(node, Linear):
                    node.land = into if bias else {1: into[1]}

        if land:
            autograd.walk_observers.append(observe)
        try:
            F.linear(x, w, b if bias else None).backward(ember.tensor(cotangent))
        finally:
            if land:
                autograd.walk_observers.remove(observe)
        if land:
            assert w.grad.data is into[1] and (not bias or b.grad.data is into[2])
            assert bias or np.isnan(into[2]).all()  # no bias: nothing written there
        return x.grad.numpy(), w.grad.numpy(), b.grad.numpy() if bias else None

    for got, want in zip(gradients(True), gradients(False)):
        if want is not None:
            np.testing.assert_array_equal(got, want)
