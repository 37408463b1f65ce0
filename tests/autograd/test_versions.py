"""Version counters: in-place changes to tensors saved for backward are errors, as in PyTorch.

Each scenario is written once against a small adapter and run in ember and in PyTorch; both
must raise at ``backward`` (a saved tensor changed in place) or both succeed with the same
gradients (the changed tensor was not needed, or the in-place op was recorded in the graph).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as enn


class Lib:
    """The few calls the scenarios need, spelled for ember or for PyTorch."""

    def __init__(self, name, torch):
        self.name, self.torch = name, torch

    def leaf(self, values, requires_grad=True):
        arr = np.asarray(values, dtype=np.float64)
        if self.name == "ember":
            return ember.tensor(arr, requires_grad=requires_grad)
        return self.torch.tensor(arr, requires_grad=requires_grad)

    def no_grad(self):
        return ember.no_grad() if self.name == "ember" else self.torch.no_grad()

    def sgd_linear(self, w, b):
        """A 3->2 linear layer with the given weights and an SGD optimizer over it."""
        if self.name == "ember":
            layer = enn.Linear(3, 2).to(dtype=ember.float64)
            with ember.no_grad():
                layer.weight.copy_(ember.tensor(w))
                layer.bias.copy_(ember.tensor(b))
            return layer, ember.optim.SGD(layer.parameters(), lr=0.1)
        T = self.torch
        layer = T.nn.Linear(3, 2).double()
        with T.no_grad():
            layer.weight.copy_(T.tensor(w))
            layer.bias.copy_(T.tensor(b))
        return layer, T.optim.SGD(layer.parameters(), lr=0.1)


X = [0.5, -1.0, 2.0]
W = [1.5, 0.25, -0.75]


def setitem_on_saved_input(L):
    x, w = L.leaf(X), L.leaf(W)
    y = x * w
    with L.no_grad():
        x[0] = 5.0
    return y.sum(), [x, w]


def changed_constant(L):
    x, c = L.leaf(X), L.leaf(W, requires_grad=False)
    y = x * c
    c[1] = 2.0
    return y.sum(), [x]


def changed_exp_output(L):
    x = L.leaf(X)
    y = x.exp()
    with L.no_grad():
        y[0] = 1.0
    return y.sum(), [x]


def write_through_detach(L):
    x = L.leaf(X)
    y = x.sin()
    x.detach()[2] = 0.0
    return y.sum(), [x]


def write_through_a_view(L):
    x, w = L.leaf(X), L.leaf(W)
    a = x * 1.0
    b = a * w  # saves a
    v = a[0:2]
    with L.no_grad():
        v[0] = 7.0
    return b.sum(), [x, w]


def optimizer_step_between(L, input_needs_grad=True):
    layer, opt = L.sgd_linear([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]], [0.05, -0.05])
    x = L.leaf([[1.0, 2.0, 3.0], [0.5, -0.5, 1.5]], requires_grad=input_needs_grad)
    layer(x).sum().backward()
    loss = (layer(x) ** 2).sum()
    opt.step()  # changes the weight, which the input's gradient needs, before loss.backward()
    return loss, list(layer.parameters())


def optimizer_step_between_on_a_first_layer(L):
    """No input gradient, so the weight is not needed for backward: no error in either framework."""
    return optimizer_step_between(L, input_needs_grad=False)


def unsaved_input_changed(L):
    x = L.leaf(X)
    y = x + 1.0  # add saves nothing
    z = x * 2.0  # a product with a number saves nothing either
    with L.no_grad():
        x[0] = 5.0
    return (y * 3.0 + z).sum(), [x]


def recorded_add_(L):
    x, w = L.leaf(X), L.leaf(W)
    a = x * 2.0
    a.add_(w)
    return (a * a).sum(), [x, w]


def recorded_mul_on_saved_output(L):
    x = L.leaf(X)
    a = x.exp()
    a.mul_(2.0)  # exp saved its output
    return a.sum(), [x]


def recorded_mul_tensor(L):
    x, w = L.leaf(X), L.leaf(W)
    a = x.sin()
    a.mul_(w)
    return (a * 1.5).sum(), [x, w]


def recorded_setitem(L):
    x, w = L.leaf(X), L.leaf(W)
    a = x * 1.0
    a[1] = w[0] * 3.0
    return (a * a).sum(), [x, w]


def recorded_masked_fill_and_clamp(L):
    x = L.leaf(X)
    a = x * 1.5
    mask = a > 2.5
    a.masked_fill_(mask, 0.25)
    a.clamp_(-1.0, 0.6)
    return (a * a).sum(), [x]


def recorded_relu_then_add_(L):
    x = L.leaf(X)
    a = x.relu()  # relu saves its output
    a.add_(1.0)
    return a.sum(), [x]


def iadd_on_a_non_leaf(L):
    x, w = L.leaf(X), L.leaf(W)
    a = x.tanh()  # saves its output
    b = x * 3.0
    b += w
    b -= 0.5
    b *= 2.0
    return (a + b * b).sum(), [x, w]


SCENARIOS = [
    setitem_on_saved_input, changed_constant, changed_exp_output, write_through_detach, write_through_a_view,
    optimizer_step_between, optimizer_step_between_on_a_first_layer, unsaved_input_changed, recorded_add_,
    recorded_mul_on_saved_output, recorded_mul_tensor,
    recorded_setitem, recorded_masked_fill_and_clamp, recorded_relu_then_add_, iadd_on_a_non_leaf,
]
RAISES = {"setitem_on_saved_input", "changed_constant", "changed_exp_output", "write_through_detach",
          "write_through_a_view", "optimizer_step_between", "recorded_mul_on_saved_output",
          "recorded_relu_then_add_"}


def _outcome(scenario, lib):
    loss, leaves = scenario(lib)
    try:
        loss.backward()
    except RuntimeError as exc:
        return "raises", str(exc)
    return "ok", [None if t.grad is None else np.array(t.grad.detach().numpy()) for t in leaves]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_same_outcome_as_torch(scenario, torch):
    ours, our_detail = _outcome(scenario, Lib("ember", torch))
    theirs, their_detail = _outcome(scenario, Lib("torch", torch))
    expected = "raises" if scenario.__name__ in RAISES else "ok"
    assert theirs == expected, f"PyTorch: {their_detail}"  # the scenario means what it says
    assert ours == theirs, f"ember: {our_detail}"
    if ours == "raises":
        assert "modified by an in-place operation" in our_detail
        return
    for a, b in zip(our_detail, their_detail):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_error_names_the_op_and_the_tensor():
    x, w = ember.tensor(np.array(X), requires_grad=True), ember.tensor(np.array(W), requires_grad=True)
    y = x * w
    with ember.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"Mul needs its input 1 \(shape \(3,\), float64\).*now at version 1"):
        y.sum().backward()


def test_versions_count_writes_through_every_alias_as_torch_does(torch):
    ours, theirs = ember.zeros(2, 3, dtype=ember.float64), torch.zeros(2, 3, dtype=torch.float64)
    seen = []
    for t in (ours, theirs):
        steps = [t._version]
        t.add_(1.0)
        steps.append(t._version)
        t[0, 1] = 3.0
        steps.append(t._version)
        t.detach().zero_()
        steps.append(t._version)
        v = t[1]
        v.fill_(2.0)
        steps.append((t._version, v._version))
        t.reshape(3, 2).mul_(2.0)
        steps.append(t._version)
        t.add(1.0)  # out of place: no write
        steps.append(t._version)
        seen.append(steps)
    assert seen[0] == seen[1]


def test_leaf_requiring_grad_refuses_recorded_in_place_ops():
    x = ember.tensor(np.array(X), requires_grad=True)
    for op in (lambda: x.add_(1.0), lambda: x.mul_(2.0), lambda: x.zero_(), lambda: x.clamp_(0, 1),
               lambda: x.__setitem__(0, 1.0), lambda: x.copy_(np.zeros(3))):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            op()
    with ember.no_grad():
        x.add_(1.0)
    assert x._version == 1 and x.numpy()[0] == 1.5


def test_recorded_in_place_on_a_viewed_tensor_is_refused():
    """PyTorch rewrites the views' history (CopySlices); ember refuses rather than give a view a stale graph."""
    x = ember.tensor(np.array(X), requires_grad=True)
    a = x * 2.0
    v = a[:2]
    with pytest.raises(RuntimeError, match="shares its memory with a view"):
        a.add_(1.0)
    with pytest.raises(RuntimeError, match="shares its memory with a view"):
        v.mul_(3.0)


def test_in_place_keeps_dtype_and_shape():
    i = ember.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="cannot be stored in place in a int64 tensor"):
        i.add_(0.5)
    with pytest.raises(TypeError, match="cannot be stored in place"):
        i.div_(2)
    i.add_(2)
    assert i.tolist() == [3, 4, 5] and i.dtype == np.int64
    f = ember.zeros(3)
    f.add_(ember.tensor(np.ones(3)))  # a float64 operand into a float32 tensor: same kind, stored as float32
    assert f.dtype == np.float32 and f.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="cannot change the shape"):
        a = ember.zeros(3, dtype=ember.float64, requires_grad=True) * 1.0
        a.add_(ember.ones(2, 3, dtype=ember.float64))


def test_iadd_writes_into_the_same_memory_as_torch_does():
    p = ember.zeros(3)
    alias = p
    p += 1.0
    assert alias is p and p.tolist() == [1.0, 1.0, 1.0]
    arr = p.numpy()
    p *= 3.0
    assert arr.tolist() == [3.0, 3.0, 3.0]


def test_backward_twice_with_retain_graph_checks_versions_again():
    x = ember.tensor(np.array(X), requires_grad=True)
    y = x.exp()
    s = y.sum()
    s.backward(retain_graph=True)
    with ember.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        s.backward()
